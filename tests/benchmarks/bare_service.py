"""The floor for the serving benchmark: a bare BentoML service doing only what any factor model
server must do - one dot product of a user's factors with all item factors, and a top-k.

Factors come from `$BARE_FACTORS` (an .npz with user_factors, item_factors, user_ids,
item_ids). Same request shape, workers and async style as `bentos/service.py`.
"""

import os

import bentoml
import numpy as np
from pydantic import BaseModel


class Item(BaseModel):
    item_id: str
    score: float


class Answer(BaseModel):
    items: list[Item]


@bentoml.service(name="bare", workers=int(os.environ.get("BARE_WORKERS", "2")))
class Bare:
    def __init__(self) -> None:
        with np.load(os.environ["BARE_FACTORS"], allow_pickle=True) as data:
            self.users = np.ascontiguousarray(data["user_factors"], dtype=np.float32)
            self.items = np.ascontiguousarray(data["item_factors"], dtype=np.float32)
            self.user_index = {str(u): i for i, u in enumerate(data["user_ids"].tolist())}
            self.item_ids = [str(i) for i in data["item_ids"].tolist()]

    @bentoml.api(route="/recommend")
    async def recommend(self, user_id: str, k: int = 10) -> Answer:
        scores = self.items @ self.users[self.user_index[user_id]]
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        return Answer(items=[Item(item_id=self.item_ids[i], score=float(scores[i])) for i in top])

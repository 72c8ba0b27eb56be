"""Data rights: export and erase one user's data across every store RecOps writes."""

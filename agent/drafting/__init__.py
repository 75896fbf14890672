"""Drafting for faster local decoding: LLMA reference copying and RAPID retrieval drafting."""

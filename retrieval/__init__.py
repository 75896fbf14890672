"""Finding evidence: corpus walking, chunking, the lexical index and the symbol graph."""

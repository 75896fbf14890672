"""Read-only file tools confined to a corpus root; depends on nothing else in peek."""

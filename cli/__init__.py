"""Front doors for people: the typer CLI."""

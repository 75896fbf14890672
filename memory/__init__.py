"""Episodic memory: the GSW workspace and EpiCache episodes."""

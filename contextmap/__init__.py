"""The context map: PEEK's orientation cache and the policy that maintains it.

Entry points (import the submodules; this package imports nothing, to keep start-up cheap):
- `policy.CachePolicy(db, corpus_id, root=..., budget=..., evolve_steps=...)`: `.update(traj)`
  learns from a session, `.render()` / `.view()` give the block for the system prompt.
- `bootstrap.bootstrap_map(db, corpus_id, root)`: seed a new map after the first index.
- `curation`: pin, unpin, forget, edit, reset, rollback, export and import, for people.
- `store.MapStore(db, corpus_id)`: load, history, diff and the versioned change sets.
- `trajectory.parse_trajectory(raw)`: the trajectory contract shared with the MCP server.
- `distiller.LLMDistiller`, `cartographer.LLMCartographer`: the model-backed Distiller and
  Cartographer (any `peek.llmjson.JSONModel`, e.g. the shipped `peek.ScriptedModel`).
"""

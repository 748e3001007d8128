"""Evaluation: the metrics (`metrics`), quality-against-diversity curves (`report`), the
temperature sweep (`sweep`), several seeds of a recipe (`seeds`), the comparison of recipes
at matched diversity (`compare`) and the LM plane's noise (`noise`). Below the trainers:
`seeds` and `compare` find the recipes in `seqadv.core.registry` by name."""

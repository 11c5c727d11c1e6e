"""The leaderboard: versioned boards of tracks, JSON submissions, verification, the rendered board.

- ``tracks``: ``Board`` / ``Track`` (the protocol, from ``leaderboard/boards/vN/board.toml``).
- ``submission``: the JSON schema, ``make_submission`` (from a results store), ``validate``, ``verify``.
- ``scores``: normalized collapse score, IQM, stratified bootstrap CIs, probability of improvement.
- ``board``: ``build`` renders leaderboard/README.md and index.html with seaborn figures.
- ``cli``: ``collapsebench leaderboard ...``.
"""

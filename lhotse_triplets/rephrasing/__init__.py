"""What the rephrase stage stands on: spoken-style text helpers (numbers and symbols said out
loud), the checks every rewrite must pass, supplied translations joined by id, and the rewrite
cache. Plain functions over text: no backend, no stage, no cut."""

"""Release logic: the artifact set, its verification, SHA256SUMS, notes and release.json."""

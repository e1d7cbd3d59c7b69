"""Test helpers, not tests. Everything here lives in the repository, so the suite runs in a bare clone.

- github_standin (+ github_api, github_records, github_standin_faults, github-releases-api.json):
  a stateful GitHub Releases stand-in that validates every request and answer against the
  project's own API description (and GitHub's official one when VELOFARM_GITHUB_OPENAPI names it);
- gitea_standin (+ gitea_standin_downloads, gitea_standin_faults, gitea_standin_json, swagger2,
  multipart_stream, gitea-releases-api.json): a stateful Gitea/Forgejo releases stand-in that
  validates every request and answer against the project's Swagger 2.0 subset of Gitea's description
  (and the official file when VELOFARM_GITEA_SWAGGER names it);
- standin_base: what both stand-ins share (the fault queue, the request record, the loopback
  servers, paging, cutting a connection);
- farmtools: reading a running farm (builds, steps, logs) through its REST API;
- worker_jobs: the job file the worker tools read, as tests build it;
- layout_rules: the house rules tests/test_layout.py holds velofarm/ to;
- codesigning: a throwaway code-signing CA and certificate (openssl) and a tiny .exe (mingw-w64),
  for the Authenticode tests.
"""

"""What the tests share, one concept to a module: the HTTP client of the app (`api`), the
domain's clock (`clock`) and TOTP codes on it (`codes`), the GraphQL documents (`documents`),
the seeded organisations (`worlds`), users brought to a state (`people`), enforcement and the
audit log as managers use them (`enforcement`, `audit`), throttled attempts (`throttling`), the
permission sweep's world of callers (`callers`), databases (`databases`) and real `mandate`
processes (`servers`).

Test modules import from here, never from one another; conftest.py holds the fixtures.
"""

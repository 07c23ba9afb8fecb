async def test_login_and_read_tree(api, seed):
    await seed({
        "users": [{"email": "ann@example.org"}, {"email": "bob@example.org"}],
        "accounts": [{"name": "North", "managers": ["ann@example.org"],
                      "sites": [{"name": "Leeds", "members": ["bob@example.org"]}],
                      "children": [{"name": "Dental"}]}],
    })
    status, token = await api.login_token("ann@example.org")
    assert status == "AUTHENTICATED"
    r = await api.gql("{ me { email twoFactorEnabled twoFactorRequired memberships { role account { name } } } "
                      "accounts { name viewerRole children { name viewerRole } sites { name } "
                      "twoFactorEnforcement { enforced source { name } } } }", token=token)
    assert not r.errors, r.body
    assert r.data["accounts"][0]["children"][0]["name"] == "Dental"


async def test_login_payload_shows_the_users_own_two_factor_state(api, seed):
    await seed({"users": [{"email": "ann@example.org"}], "accounts": [{"name": "North", "members": ["ann@example.org"]}]})
    r = await api.gql('mutation { login(email: "ann@example.org", password: "password-123") '
                      '{ status user { email twoFactorEnabled twoFactorRequired } } }')
    assert not r.errors, r.body
    assert r.data["login"]["user"] == {"email": "ann@example.org", "twoFactorEnabled": False, "twoFactorRequired": False}

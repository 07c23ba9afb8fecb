"""The GraphQL documents several test modules send."""

ME = "{ me { id email name twoFactorEnabled twoFactorRequired } }"
ACCOUNTS = "{ accounts { id name } }"
LOGOUT = "mutation { logout }"
ENROL = "mutation { enrolTotp { secret otpauthUri qrCodeSvg } }"
CONFIRM = "mutation($c: String!) { confirmTotp(code: $c) { recoveryCodes token user { email twoFactorEnabled } } }"
VERIFY = "mutation($c: String!) { verifyTwoFactor(code: $c) { status token expiresAt } }"
DISABLE = "mutation($c: String!) { disableTotp(code: $c) { email twoFactorEnabled } }"
REGENERATE = "mutation($c: String!) { regenerateRecoveryCodes(code: $c) }"
REMAINING = "{ me { recoveryCodesRemaining } }"
SET_ENFORCEMENT = """
mutation($a: ID!, $on: Boolean!) {
  setEnforcement(accountId: $a, enforced: $on) { id name twoFactorEnforcement { enforced enforcedHere } }
}"""
ENFORCEMENT = "twoFactorEnforcement { enforced enforcedHere changedAt changedBy { email } source { id name } }"
# An account's log, newest first; 200 events unless `first` says otherwise.
AUDIT = """
query($id: ID!, $first: Int! = 200, $after: String) {
  account(id: $id) {
    auditEvents(first: $first, after: $after) {
      edges { cursor node { at action actor { email } subject { email } clientAddress } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
# Three levels of the tree with sites and enforcement: what a frontend asks to draw it.
TREE = """{ accounts { id name
  twoFactorEnforcement { enforced enforcedHere source { id name } } sites { id name }
  children { id name twoFactorEnforcement { enforced source { id name } } sites { id name }
    children { id name twoFactorEnforcement { enforced source { id name } } sites { id name } } } } }"""

"""A small playground page with no outside assets: it works where the internet is blocked."""

PLAYGROUND_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mandate playground</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; display: grid;
         grid-template-columns: 1fr 1fr; grid-template-rows: auto 1fr; height: 100vh; }
  header { grid-column: 1 / 3; padding: .5rem 1rem; background: #123; color: #fff;
           display: flex; gap: 1rem; align-items: center; }
  header h1 { font-size: 1rem; margin: 0; }
  .pane { display: flex; flex-direction: column; padding: .5rem; gap: .5rem; min-height: 0; }
  textarea, pre { font: 13px/1.4 ui-monospace, monospace; flex: 1; margin: 0; padding: .5rem;
                  border: 1px solid #ccc; border-radius: 4px; overflow: auto; }
  #variables, #headers { flex: 0 0 6rem; }
  button { font: inherit; padding: .3rem 1rem; }
  label { font-weight: 600; }
</style>
</head>
<body>
<header><h1>Mandate</h1>
  <select id="examples" aria-label="Examples"></select>
  <button id="run" type="button">Run (Ctrl+Enter)</button>
</header>
<div class="pane">
  <label for="query">Operation</label>
  <textarea id="query" spellcheck="false"></textarea>
  <label for="variables">Variables (JSON)</label>
  <textarea id="variables" spellcheck="false">{}</textarea>
  <label for="headers">Headers (JSON): put your token here</label>
  <textarea id="headers" spellcheck="false">{"Authorization": "Bearer "}</textarea>
</div>
<div class="pane">
  <label for="result">Result</label>
  <pre id="result" aria-live="polite"></pre>
</div>
<script>
const examples = {
  "login": ["mutation Login($email: String!, $password: String!) {\\n  login(email: $email, password: $password) {\\n    status token expiresAt\\n    user { id email twoFactorEnabled twoFactorRequired }\\n  }\\n}", {"email": "manager@example.org", "password": "demo-password"}],
  "verifyTwoFactor": ["mutation Verify($code: String!) {\\n  verifyTwoFactor(code: $code) { status token expiresAt }\\n}", {"code": "123456"}],
  "account tree": ["query Tree {\\n  accounts {\\n    id name viewerRole\\n    twoFactorEnforcement { enforced enforcedHere source { id name } }\\n    sites { id name }\\n    descendants {\\n      id name\\n      parent { id }\\n      twoFactorEnforcement { enforced source { id name } }\\n      sites { id name }\\n    }\\n  }\\n}", {}],
  "setEnforcement": ["mutation Enforce($accountId: ID!, $enforced: Boolean!) {\\n  setEnforcement(accountId: $accountId, enforced: $enforced) {\\n    id name\\n    twoFactorEnforcement { enforced enforcedHere changedAt changedBy { name } }\\n  }\\n}", {"accountId": "", "enforced": true}],
};
const pick = document.getElementById("examples");
for (const name of Object.keys(examples)) pick.add(new Option(name, name));
function load(name) {
  document.getElementById("query").value = examples[name][0];
  document.getElementById("variables").value = JSON.stringify(examples[name][1], null, 2);
}
pick.onchange = () => load(pick.value);
load("login");
async function run() {
  const out = document.getElementById("result");
  let headers, variables;
  try { headers = JSON.parse(document.getElementById("headers").value || "{}"); }
  catch (e) { out.textContent = "Headers are not JSON: " + e.message; return; }
  try { variables = JSON.parse(document.getElementById("variables").value || "{}"); }
  catch (e) { out.textContent = "Variables are not JSON: " + e.message; return; }
  if ((headers.Authorization || "").trim() === "Bearer") delete headers.Authorization;
  const response = await fetch(location.pathname, {
    method: "POST",
    headers: {"Content-Type": "application/json", ...headers},
    body: JSON.stringify({query: document.getElementById("query").value, variables}),
  });
  out.textContent = JSON.stringify(await response.json(), null, 2);
}
document.getElementById("run").onclick = run;
document.addEventListener("keydown", (e) => { if (e.ctrlKey && e.key === "Enter") run(); });
</script>
</body>
</html>
"""

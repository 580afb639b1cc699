"""OAuth machine-to-machine sign-in on the sandbox workspace: a service principal's client ID and secret, through
databricks-sdk's own `oauth-m2m`, give an access token that acts as that principal, for a limited time.

What it follows, quoted where it is tested:
* Databricks, "Authorize service principal access to Databricks with OAuth" (docs.databricks.com/dev-tools/auth/
  oauth-m2m): "Each access token is valid for one hour, after which a new token is automatically requested." and
  "The client ID is the same as the service principal's application ID.";
* RFC 6749 (the OAuth 2.0 framework): §4.4 the client credentials grant, §5.1 the answer, §5.2 its errors;
* databricks-sdk's `oauth_service_principal` (credentials_provider.py): host metadata, RFC 8414 discovery, then
  `grant_type=client_credentials&scope=all-apis` with the client ID and secret as HTTP Basic auth.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import PermissionDenied
from databricks.sdk.service import compute, jobs

from core.identity import Environment
from devstack.principals import DEV, STAGING, TOKENS, seed_grants
from devstack.principals import OAUTH_SECRETS as SECRETS
from devstack.sandboxes import WORKSPACE_TOKEN
from sandbox.workspace import create_app
from tests.support import stand_ins
from workers.gateways.workspace import Workspace

LIFETIME = 5  # seconds: long enough for a call, short enough to outlive in a test
ME = "/api/2.0/preview/scim/v2/Me"
TOKEN = "/oidc/v1/token"
UC = "/api/2.0/mlflow/unity-catalog"
CLUSTER = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
SEEDED = [
    *(arg for app_id, token in TOKENS.items() for arg in ("--service-principal", f"{app_id}={token}")),
    *(arg for app_id, secret in SECRETS.items() for arg in ("--oauth-secret", f"{app_id}={secret}")),
]


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# ---- the protocol, in process (the default lifetime) ----------------------------------------------------------
@pytest.fixture(scope="module")
def http(tmp_path_factory):
    app = create_app(
        tmp_path_factory.mktemp("ws-oauth"), WORKSPACE_TOKEN, service_principals=TOKENS, oauth_secrets=SECRETS
    )
    return app.test_client()


def sign_in(http, **form) -> tuple[int, dict, dict]:
    headers = form.pop("headers", basic(DEV, SECRETS[DEV]))
    answer = http.post(TOKEN, data={"grant_type": "client_credentials", "scope": "all-apis", **form}, headers=headers)
    return answer.status_code, answer.get_json(), dict(answer.headers)


def test_the_sdk_finds_the_token_endpoint_from_the_host(http):
    # databricks-sdk: Config._resolve_host_metadata reads `oidc_endpoint`, then get_endpoints_from_url reads
    # `{oidc_endpoint}/.well-known/oauth-authorization-server` (RFC 8414) for its `token_endpoint`.
    meta = http.get("/.well-known/databricks-config").get_json()
    assert meta["oidc_endpoint"] == "http://localhost/oidc"
    server = http.get("/oidc/.well-known/oauth-authorization-server").get_json()
    assert server["token_endpoint"] == "http://localhost/oidc/v1/token"
    assert server["grant_types_supported"] == ["client_credentials"]


def test_a_token_lasts_an_hour_and_acts_as_the_service_principal(http):
    # "Each access token is valid for one hour"; RFC 6749 §5.1: access_token, token_type, expires_in, and
    # "Cache-Control: no-store" on any response containing tokens.
    status, body, headers = sign_in(http)
    assert status == 200, body
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "all-apis")
    assert headers["Cache-Control"] == "no-store"
    me = http.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"}).get_json()
    assert me["userName"] == DEV  # "The client ID is the same as the service principal's application ID."


def test_the_client_may_send_its_credentials_in_the_form(http):
    # RFC 6749 §2.3.1: "the authorization server MAY support including the client credentials in the request-body
    # using the following parameters: client_id ... client_secret"
    status, body, _ = sign_in(http, client_id=STAGING, client_secret=SECRETS[STAGING], headers={})
    assert status == 200, body
    me = http.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"}).get_json()
    assert me["userName"] == STAGING


# RFC 6749 §5.2, each error's definition:
#   invalid_client: "Client authentication failed (e.g., unknown client, no client authentication included, or
#     unsupported authentication method)." (401 when the client used the Authorization header)
#   unsupported_grant_type: "The authorization grant type is not supported by the authorization server."
#   invalid_request: "The request is missing a required parameter, ... or is otherwise malformed."
#   invalid_scope: "The requested scope is invalid, unknown, malformed, or exceeds the scope granted"
@pytest.mark.parametrize(
    "form, status, error",
    [
        ({"headers": basic(DEV, "dose-wrong")}, 401, "invalid_client"),
        ({"headers": basic("99999999-0000-4000-8000-000000000000", "x")}, 401, "invalid_client"),
        ({"headers": basic(DEV, SECRETS[STAGING])}, 401, "invalid_client"),  # another principal's secret
        ({"headers": basic("sandbox-user@example.com", WORKSPACE_TOKEN)}, 401, "invalid_client"),  # a user, a PAT
        ({"headers": {}}, 401, "invalid_client"),
        ({"client_id": DEV, "client_secret": "dose-wrong", "headers": {}}, 401, "invalid_client"),
        ({"grant_type": "password", "username": DEV, "password": SECRETS[DEV]}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        # §2.3: "The client MUST NOT use more than one authentication method in each request."
        ({"client_id": DEV, "client_secret": SECRETS[DEV]}, 400, "invalid_request"),
        ({"scope": "all-apis sql"}, 400, "invalid_scope"),
    ],
)
def test_a_bad_token_request_gets_the_oauth_error(http, form, status, error):
    basic_used = bool(form.get("headers", True))
    got, body, headers = sign_in(http, **form)
    assert (got, body["error"]) == (status, error), body
    assert body["error_description"]
    assert "access_token" not in body
    if error == "invalid_client" and basic_used:
        # §5.2: "the authorization server MUST respond with an HTTP 401 (Unauthorized) status code and include the
        # "WWW-Authenticate" response header field matching the authentication scheme used by the client."
        assert headers["WWW-Authenticate"].startswith("Basic ")


def test_the_token_endpoint_takes_post_only(http):
    # RFC 6749 §3.2: "The client MUST use the HTTP "POST" method when making access token requests."
    assert http.get(TOKEN + "?grant_type=client_credentials", headers=basic(DEV, SECRETS[DEV])).status_code == 405


def test_an_expired_or_forged_token_is_refused(tmp_path):
    http = create_app(
        tmp_path, WORKSPACE_TOKEN, service_principals=TOKENS, oauth_secrets=SECRETS, oauth_token_lifetime=1
    ).test_client()
    _, body, _ = sign_in(http)
    token = body["access_token"]
    head, claims, signature = token.split(".")
    as_prod = json.loads(base64.urlsafe_b64decode(claims + "==")) | {"sub": "9a4f0c3d-0000-4000-8000-0000000000ef"}
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(as_prod).encode()).decode().rstrip("="), signature])
    refused = http.get(ME, headers={"Authorization": f"Bearer {forged}"})
    assert (refused.status_code, refused.get_json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert http.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    time.sleep(1.1)
    expired = http.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "expired" in expired.get_json()["message"]


def test_a_service_principal_needs_a_seeded_secret(tmp_path):
    with pytest.raises(ValueError, match="not a service principal of this workspace"):
        create_app(tmp_path, WORKSPACE_TOKEN, service_principals=TOKENS, oauth_secrets={"ghost": "dose-x"})


# ---- databricks-sdk's oauth-m2m, over HTTP -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    data = tmp_path_factory.mktemp("ws-oauth-http")
    args = ["--data", str(data), "--token", WORKSPACE_TOKEN, "--oauth-token-lifetime", str(LIFETIME), *SEEDED]
    proc, url = stand_ins.start("workspace", args, {}, 30)
    seed_grants(url, WORKSPACE_TOKEN)  # dev may create models in dev.ml, and not in staging.ml
    yield url
    stand_ins.stop(proc)


def m2m(url: str, client_id: str = DEV, secret: str = SECRETS[DEV]) -> WorkspaceClient:
    return WorkspaceClient(host=url, client_id=client_id, client_secret=secret, auth_type="oauth-m2m")


def token_requests(url: str) -> int:
    with urllib.request.urlopen(url + "/sandbox/requests", timeout=5) as answer:
        return json.loads(answer.read()).get(f"POST {TOKEN}", 0)


def test_the_sdk_signs_in_as_the_service_principal(sandbox):
    before = token_requests(sandbox)
    w = m2m(sandbox)
    assert w.config.auth_type == "oauth-m2m"
    assert w.current_user.me().user_name == DEV
    assert token_requests(sandbox) > before  # it signed in at the token endpoint, not with a PAT


def test_the_sdk_refuses_to_go_on_with_a_wrong_secret(sandbox):
    # RFC 6749 §5.2 invalid_client: the SDK raises with the error code it read
    with pytest.raises(ValueError, match="invalid_client"):
        m2m(sandbox, secret="dose-wrong").current_user.me()
    with pytest.raises(ValueError, match="invalid_client"):
        m2m(sandbox, client_id="99999999-0000-4000-8000-000000000000").current_user.me()


def test_the_sdk_gets_a_new_token_when_its_token_expires(sandbox):
    # "Each access token is valid for one hour, after which a new token is automatically requested." -- here
    # LIFETIME seconds: the first token stops working, and the same client goes on with a new one.
    w = m2m(sandbox)
    assert w.current_user.me().user_name == DEV
    first = w.config.authenticate()["Authorization"]
    time.sleep(LIFETIME + 0.5)
    request = urllib.request.Request(sandbox + ME, headers={"Authorization": first})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401 and "expired" in json.loads(refused.value.read())["message"]
    asked = token_requests(sandbox)
    assert w.current_user.me().user_name == DEV
    assert token_requests(sandbox) > asked and w.config.authenticate()["Authorization"] != first


def test_an_oauth_token_holds_what_its_principal_holds(sandbox):
    # The token acts as the principal: its grants (seeded: CREATE MODEL on dev.ml only), the jobs it owns ("The
    # creator of the job is granted the IS OWNER permission."), and no run_as for another principal without the
    # Service Principal User role.
    w = m2m(sandbox)
    w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": "dev.ml.oauth"})
    with pytest.raises(PermissionDenied, match="CREATE MODEL|USE"):
        w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": "staging.ml.oauth"})
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="x.py"), new_cluster=CLUSTER)
    job_id = w.jobs.create(name="dev's own", tasks=[task]).job_id
    assert w.jobs.get(job_id).creator_user_name == DEV
    with pytest.raises(PermissionDenied, match="Service Principal User"):
        w.jobs.create(name="as staging", tasks=[task], run_as=jobs.JobRunAs(service_principal_name=STAGING))
    pat = WorkspaceClient(config=Config(host=sandbox, token=TOKENS[STAGING], auth_type="pat"))
    with pytest.raises(PermissionDenied):
        pat.jobs.run_now(job_id)  # staging holds nothing on dev's job, by PAT or otherwise


def test_the_bots_own_sign_in_runs_against_the_stand_in(sandbox, monkeypatch):
    # core/identity.py's production choice: `client_id` + `client_secret_env` -> auth_type "oauth-m2m"
    monkeypatch.setenv("SANDBOX_DEV_CLIENT_SECRET", SECRETS[DEV])
    env = Environment(host=sandbox, client_id=DEV, client_secret_env="SANDBOX_DEV_CLIENT_SECRET")
    assert env.auth_type == "oauth-m2m"
    assert Workspace("dev", env).client.current_user.me().user_name == DEV

"""Values the GitHub gateway puts into a URL path are checked before any request: a `commit` that is not a
40-hex SHA (say, from a tag someone wrote) never reaches `/statuses/{sha}`."""

import pytest

from core.config import GitHubSettings
from workers.errors import Permanent
from workers.gateways.forge import Forge


@pytest.mark.parametrize("sha", ["main", "../../issues/1", "A" * 40, "a" * 39, "a" * 40 + "/x", ""])
def test_a_status_for_something_that_is_not_a_commit_sha_is_refused_without_a_request(sha, monkeypatch):
    monkeypatch.setenv("FORGE_VALUES_TOKEN", "ghp_x")
    forge = Forge(GitHubSettings(base_url="http://127.0.0.1:9", token_env="FORGE_VALUES_TOKEN"))  # nothing listens
    with pytest.raises(Permanent, match="not a commit SHA"):
        forge.set_status("acme/churn-model", sha, "mlops-bot/test", "pending", "running")

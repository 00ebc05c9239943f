"""Settings come from the environment; every supported URL form parses."""

import pytest

from config.env import as_bool, as_int_or_none, as_list, broker_config, database_config


def test_empty_database_url_means_embedded_sqlite_under_var(tmp_path):
    config = database_config("", var_dir=tmp_path)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "concord.sqlite3")
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_postgres_urls_parse_with_every_part(scheme, tmp_path):
    config = database_config(f"{scheme}://alice:s3cret@db.internal:5433/concord", var_dir=tmp_path)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["USER"], config["PASSWORD"]) == ("alice", "s3cret")
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "concord")
    assert config["CONN_HEALTH_CHECKS"] is True


def test_postgres_url_without_password_uses_trust_auth(tmp_path):
    config = database_config("postgres://postgres@127.0.0.1:5432/test", var_dir=tmp_path)
    assert config["USER"] == "postgres" and not config["PASSWORD"]


def test_a_sqlite_url_with_an_absolute_path_names_that_file(tmp_path):
    config = database_config(f"sqlite:///{tmp_path}/other.db", var_dir=tmp_path)
    assert config["NAME"] == f"{tmp_path}/other.db"


def test_unsupported_database_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unsupported DATABASE_URL"):
        database_config("mssql://x@y/z", var_dir=tmp_path)


def test_empty_broker_means_filesystem_folder_under_var(tmp_path):
    url, options = broker_config(None, var_dir=tmp_path)
    assert url == "filesystem://"
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker/queue")
    assert (tmp_path / "broker" / "queue").is_dir()


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://:pw@redis:6379/3", "rediss://cache:6380/1"]
)
def test_redis_broker_urls_are_used_as_given_with_bounded_retries(url, tmp_path):
    parsed, options = broker_config(url, var_dir=tmp_path, visibility_timeout=90)
    assert parsed == url
    assert options["max_retries"] == 2
    # a lost worker's job goes back to the queue 90 s after it was taken, looked for every 10 s
    assert options["visibility_timeout"] == 90
    assert options["unacked_restore_throttle"] == 1


def test_unsupported_broker_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unsupported CELERY_BROKER_URL"):
        broker_config("sqs://queue", var_dir=tmp_path)


@pytest.mark.parametrize(
    "value,expected", [("1", True), ("true", True), ("on", True), ("0", False), ("", False)]
)
def test_boolean_settings_read_1_true_and_on_as_true_else_false(value, expected):
    assert as_bool(value) is expected


def test_list_settings_split_on_commas_or_fall_back_to_the_default():
    assert as_list("a.example, b.example,", ["x"]) == ["a.example", "b.example"]
    assert as_list(None, ["x"]) == ["x"]


def test_postgres_behind_a_transaction_pooler_has_no_server_side_cursors(tmp_path):
    url = "postgres://concord@pgbouncer:6432/concord"
    direct = database_config(url, var_dir=tmp_path)
    pooled = database_config(
        url, var_dir=tmp_path, transaction_pooling=True, prepare_threshold=None
    )
    assert direct["DISABLE_SERVER_SIDE_CURSORS"] is False
    assert direct["OPTIONS"]["prepare_threshold"] == 5
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert pooled["OPTIONS"]["prepare_threshold"] is None


@pytest.mark.parametrize(
    "value,expected", [(None, 5), ("", 5), ("12", 12), ("none", None), ("Off", None)]
)
def test_prepare_threshold_setting_reads_a_number_or_none(value, expected):
    assert as_int_or_none(value, 5) == expected

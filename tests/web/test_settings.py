"""Production settings: refuse to start half-configured, pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


# A machine of its own: neither the run's secrets nor its database and queue (these commands need neither).
NOT_PASSED_ON = {"SECRET_KEY", "STUDIO_ENCRYPTION_KEYS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL",
                 "REDIS_URL", "STUDIO_Q_NAME"}


def manage(*args, env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED_ON}
    env.update({"STUDIO_DATA_DIR": str(tmp_path), **env_overrides})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x7!kq2@Lm9#vR4$tZ8^wN1&bY6*cH3(jF5)pD0-sG7_eA2+uQ9=iK4~oW1",
    "STUDIO_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "studio.example.com",
}


def test_check_deploy_reports_no_issues_in_production(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "STUDIO_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_its_secrets(tmp_path, missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env_overrides=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"{missing} must be set in the environment" in result.stderr
    assert not (tmp_path / "dev-secrets.json").exists()


def test_a_malformed_encryption_key_is_named_as_such(tmp_path):
    env = {**PRODUCTION, "STUDIO_ENCRYPTION_KEYS": "not-a-fernet-key"}
    result = manage("shell", "-c", "from studio.core.crypto import encrypt; encrypt('x')", env_overrides=env,
                    tmp_path=tmp_path)
    assert result.returncode != 0
    assert "STUDIO_ENCRYPTION_KEYS must hold comma-separated Fernet keys" in result.stderr


def test_every_html_page_carries_a_content_security_policy(client):
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_a_laptop_gets_generated_secrets_that_survive_a_restart(tmp_path):
    env = {"DEBUG": "1"}
    first = manage("shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", env_overrides=env,
                   tmp_path=tmp_path)
    second = manage("shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", env_overrides=env,
                    tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() and first.stdout == second.stdout
    assert oct((tmp_path / "dev-secrets.json").stat().st_mode & 0o777) == "0o600"


def test_production_static_files_are_hashed_and_compressed(tmp_path):
    env = {**PRODUCTION, "STUDIO_STATIC_ROOT": str(tmp_path / "static")}
    result = manage("collectstatic", "--noinput", "-v0", env_overrides=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    static = tmp_path / "static"
    assert (static / "staticfiles.json").exists()
    hashed = list((static / "css").glob("studio.*.css"))
    assert hashed, "no hashed stylesheet"
    assert (static / "css" / f"{hashed[0].name}.gz").exists()
    assert (static / "css" / f"{hashed[0].name}.br").exists()


def test_the_development_download_allow_list_names_the_sandboxs_host_and_port_only(tmp_path):
    show = "from django.conf import settings; print(settings.STUDIO_DOWNLOAD_ALLOW_HOSTS)"
    result = manage("shell", "-c", show, env_overrides={"DEBUG": "1", "STUDIO_SANDBOX_URL": "http://127.0.0.1:8001"},
                    tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['127.0.0.1:8001']"


def test_database_url_and_redis_url_choose_postgresql_and_redis_under_the_queue_name(tmp_path):
    show = ("from django.conf import settings; db = settings.DATABASES['default']; q = settings.Q_CLUSTER; "
            "print(db['ENGINE'], db['NAME'], db['HOST'], q['name'], q['redis'].split('?')[0], 'orm' in q)")
    env = {"DEBUG": "1", "DATABASE_URL": "postgres://studio:secret@db.internal:5432/studio",
           "REDIS_URL": "redis://cache.internal:6379/2", "STUDIO_Q_NAME": "studio-b"}
    result = manage("shell", "-c", show, env_overrides=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "django.db.backends.postgresql", "studio", "db.internal", "studio-b", "redis://cache.internal:6379/2", "False"]


def test_without_them_the_studio_uses_sqlite_and_the_orm_broker_in_its_data_dir(tmp_path):
    show = ("from django.conf import settings; db = settings.DATABASES['default']; q = settings.Q_CLUSTER; "
            "print(db['ENGINE'], db['NAME'], q['name'], q['orm'], 'redis' in q)")
    result = manage("shell", "-c", show, env_overrides={"DEBUG": "1"}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "django.db.backends.sqlite3", str(tmp_path / "studio.sqlite3"), "studio", "default", "False"]

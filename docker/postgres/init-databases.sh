#!/usr/bin/env bash
# Creates one database and one owning role per service (Airflow metadata, MLflow tracking)
# so that neither service holds the superuser password. Runs once, on an empty data volume
# (postgres image: /docker-entrypoint-initdb.d). Passwords arrive through the environment
# and are bound as psql variables, so no quoting of their content is needed here.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD must be set (see .env.example)}"
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD must be set (see .env.example)}"

create_database() {
    local name="$1" password="$2"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
CREATE ROLE :"name" WITH LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create_database airflow "$AIRFLOW_DB_PASSWORD"
create_database mlflow "$MLFLOW_DB_PASSWORD"

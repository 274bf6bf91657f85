"""The S3 client's user agent names the calling operator as the Amazon provider does, without
the provider's ``inspect.stack()`` (which reads every frame's source file: 0.17 s of a task's
first S3 client). The provider's own method is the oracle."""

from __future__ import annotations

import json

import pytest
from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from airflow.sdk import BaseOperator
from airflow.sdk.bases.sensor import BaseSensorOperator
from retrain_ops.hooks import ObjectStoreHook, _s3_hook_class, calling_operator


def _both(hook):
    return hook._get_caller(), AwsGenericHook._get_caller(hook)


class FetchLikeOperator(BaseOperator):
    def execute(self, context):
        return _both(_s3_hook_class()(aws_conn_id="none"))


class Poker:
    def poke(self, context):
        return _both(_s3_hook_class()(aws_conn_id="none"))


def test_an_operator_is_named_as_the_provider_names_it():
    ours, provider = FetchLikeOperator(task_id="t").execute({})
    assert ours == provider == "FetchLikeOperator"


def test_a_generic_sensor_is_named_by_whatever_called_poke():
    def execute(self):  # the innermost execute frame belongs to a plain BaseSensorOperator
        return Poker().poke({})

    ours, provider = execute(BaseSensorOperator(task_id="s"))
    assert ours == provider == "Poker"


def test_outside_any_operator_the_caller_is_unknown():
    hook = _s3_hook_class()(aws_conn_id="none")
    assert hook._get_caller() == "Unknown"


def test_the_store_sends_the_operator_in_its_user_agent(monkeypatch, moto_server):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UA_CHECK",
        json.dumps({"conn_type": "aws", "login": "test", "password": "test", "extra": {"endpoint_url": moto_server}}),
    )

    class UaOperator(BaseOperator):
        def execute(self, context):
            return ObjectStoreHook("ua_check").store

    store = UaOperator(task_id="ua").execute({})
    agent = store.client.meta.config.user_agent_extra
    assert "Caller/UaOperator" in agent, agent


@pytest.mark.parametrize("name", ["execute", "poke"])
def test_calling_operator_walks_to_the_innermost_method_of_that_name(name):
    class Outer:
        def execute(self):
            return Inner().poke()

    class Inner:
        def poke(self):
            import sys

            return calling_operator(sys._getframe(), name)

    assert Outer().execute() == {"execute": "Outer", "poke": "Inner"}[name]

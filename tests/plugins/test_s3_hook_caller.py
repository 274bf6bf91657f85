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


def test_outside_any_operator_it_is_the_providers_answer_too():
    hook = _s3_hook_class()(aws_conn_id="none")
    ours, provider = _both(hook)
    assert ours == provider


def test_an_executor_on_the_stack_is_named_as_the_provider_names_it():
    """A task forked by the LocalExecutor still has the executor's frames below it: a client
    built outside execute (a deferred task's resume, a callback) is named after them."""
    namespace: dict = {"BaseExecutor": type("BaseExecutor", (), {}), "LocalExecutor": type("LocalExecutor", (), {})}
    exec(
        "def run_workload(hook_class):\n    return _both(hook_class(aws_conn_id='none'))\n",
        {**namespace, "_both": _both},
        namespace,
    )
    ours, provider = namespace["run_workload"](_s3_hook_class())
    assert ours == provider == "LocalExecutor"


def test_the_store_sends_the_operator_in_its_user_agent_without_the_providers_stack_walk(monkeypatch):
    import inspect

    def no_stack_walk(*_a, **_k):
        raise AssertionError("inspect.stack() called")

    # The provider's own method would then fail and send "Caller/Unknown".
    monkeypatch.setattr(inspect, "stack", no_stack_walk)
    monkeypatch.setenv(
        "AIRFLOW_CONN_UA_CHECK",
        json.dumps(
            {"conn_type": "aws", "login": "test", "password": "test", "extra": {"endpoint_url": "http://127.0.0.1:9"}}
        ),
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

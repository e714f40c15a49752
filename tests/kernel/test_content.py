"""Request content as clients send it: a minimal client sends only the fields it means (and
`null` for those it leaves unset); a field of the wrong type is answered with an error reply
naming it, between the request's busy and idle, and the kernel keeps serving."""
from conftest import collect


def request(kc, channel, msg_type, content, timeout=120):
    """Sends a hand-made request; returns (reply, IOPub messages up to its idle, their states)."""
    msg = kc.session.msg(msg_type, content)
    getattr(kc, f"{channel}_channel").send(msg)
    msg_id = msg["header"]["msg_id"]
    outputs, _ = collect(kc, msg_id, timeout=timeout)
    get = getattr(kc, f"get_{channel}_msg")
    reply = get(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = get(timeout=timeout)
    return reply, outputs


def test_a_minimal_execute_request_runs_with_the_protocols_defaults(kernel):
    _, kc = kernel
    reply, outputs = request(kc, "shell", "execute_request", {"code": "6 * 7"})
    assert reply["content"]["status"] == "ok", reply["content"]
    count = reply["content"]["execution_count"]
    kinds = [m["msg_type"] for m in outputs]
    assert kinds == ["status", "execute_input", "execute_result"], kinds
    assert outputs[0]["content"]["execution_state"] == "busy"
    assert outputs[2]["content"]["data"]["text/plain"] == "42"
    # `null` is a field left out: counted, stored, not silent.
    reply, outputs = request(
        kc, "shell", "execute_request",
        {"code": "1 + 1", "silent": None, "store_history": None, "allow_stdin": None, "stop_on_error": None},
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    assert reply["content"]["execution_count"] == count + 1
    assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["2"]


def test_a_wrong_typed_field_gets_an_error_reply_naming_it_and_the_kernel_keeps_serving(kernel):
    _, kc = kernel
    reply, _ = request(kc, "shell", "execute_request", {"code": "0"})
    count = reply["content"]["execution_count"]
    cases = [
        ("shell", "execute_request", {"code": 5}, "code"),
        ("shell", "execute_request", {"code": "1", "silent": "yes"}, "silent"),
        ("shell", "complete_request", {"code": "Vec::", "cursor_pos": "end"}, "cursor_pos"),
        ("shell", "history_request", {"hist_access_type": "tail", "n": "ten"}, "n"),
        ("shell", "is_complete_request", {"code": ["fn f() {"]}, "code"),
        # On control: a shutdown request the kernel cannot read does not shut it down.
        ("control", "shutdown_request", {"restart": "yes"}, "restart"),
    ]
    for channel, msg_type, content, field in cases:
        reply, outputs = request(kc, channel, msg_type, content, timeout=30)
        assert reply["msg_type"] == msg_type.replace("_request", "_reply")
        c = reply["content"]
        assert c["status"] == "error" and c["ename"] == "BadRequest", c
        assert f"invalid {msg_type} content: field `{field}`" in c["evalue"], c
        assert c["traceback"] == [f"BadRequest: {c['evalue']}"]
        if msg_type == "execute_request":
            # Every execute_reply has a count (JupyterLab copies it into the cell): the current one.
            assert c.get("execution_count") == count, c
        # busy, and nothing else before idle: the cell did not run, nothing was published.
        assert [m["msg_type"] for m in outputs] == ["status"], outputs
        assert outputs[0]["content"]["execution_state"] == "busy"
    reply, outputs = request(kc, "shell", "execute_request", {"code": "2 + 2"})
    assert reply["content"]["status"] == "ok", reply["content"]
    # The refused cells were not counted.
    assert reply["content"]["execution_count"] == count + 1
    assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == ["4"]

"""The API tour through the Python client openapi-python-client generated from the server's live
/openapi.json (tests/openapi-clients/run.sh generates it and runs this).

Every answer of the tour is decoded by the generated client (`sync_detailed(...).parsed`) and
compared with the raw JSON it was decoded from: every field of the JSON must be a declared
attribute of the decoded model (none left in `additional_properties`, none unset), hold a value of
the attribute's declared type (an int for an integer, the enum member for an enum, the model
for an object, recursively), and the model must give back exactly the JSON (`to_dict()`). A
device's call status and an API key's call details, which `GET /v1/calls/{call_id}` answers,
must decode as `CallStatus` and `CallDetail` with every delivery and timeline entry.

Usage: tour.py GENERATED_DIR BASE_URL API_KEY USER DEVICE_TOKEN
  GENERATED_DIR holds the generated package `callpush_client`; DEVICE_TOKEN is USER's, and USER
  has no installations yet.
"""

import enum
import json
import sys
import time
import types
import typing

import attrs


class Dropped(AssertionError):
    """A decoded answer lost or mistyped a field of its JSON."""


def type_ok(hint, value):
    """Whether `value` is of the declared type `hint` (a resolved annotation)."""
    from callpush_client.types import Unset

    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(member, value) for member in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Unset:
        return False  # a field the JSON has is never unset
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(type_ok(item, v) for v in value)
    if origin is dict:
        _, item = typing.get_args(hint)
        return isinstance(value, dict) and all(type_ok(item, v) for v in value.values())
    if hint is bool:
        return type(value) is bool
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if hint is str:
        return type(value) is str
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint)
    if isinstance(hint, type) and attrs.has(hint):
        return isinstance(value, hint)
    raise TypeError(f"no check for the annotation {hint!r}")


def hints(cls):
    """The resolved annotations of a generated model."""
    import callpush_client.models as models
    from callpush_client import types as client_types

    names = {**vars(models), "Unset": client_types.Unset}
    return typing.get_type_hints(cls, localns=names)


def compare(decoded, raw, where):
    """Raises Dropped unless `decoded` holds every field of `raw`, each with its declared type."""
    if attrs.has(type(decoded)):
        if not isinstance(raw, dict):
            raise Dropped(f"{where}: decoded a {type(decoded).__name__} from {raw!r}")
        extra = getattr(decoded, "additional_properties", {})
        if extra:
            raise Dropped(f"{where}: {type(decoded).__name__} does not declare {sorted(extra)}")
        declared = hints(type(decoded))
        by_name = {f.name: f for f in attrs.fields(type(decoded))}
        for key, value in raw.items():
            name = key if key in by_name else f"{key}_"
            if name not in by_name:
                raise Dropped(f"{where}.{key}: not an attribute of {type(decoded).__name__}")
            attribute = getattr(decoded, name)
            if not type_ok(declared[name], attribute):
                raise Dropped(f"{where}.{key}: {attribute!r} is not a {declared[name]} (JSON {value!r})")
            compare(attribute, value, f"{where}.{key}")
        if decoded.to_dict() != raw:
            raise Dropped(f"{where}: gives back {decoded.to_dict()!r}, not {raw!r}")
    elif isinstance(raw, list):
        if not isinstance(decoded, list) or len(decoded) != len(raw):
            raise Dropped(f"{where}: {decoded!r} is not the list {raw!r}")
        for i, (d, r) in enumerate(zip(decoded, raw)):
            compare(d, r, f"{where}[{i}]")
    elif isinstance(raw, dict):
        if not isinstance(decoded, dict) or decoded.keys() != raw.keys():
            raise Dropped(f"{where}: {decoded!r} is not the map {raw!r}")
        for key in raw:
            compare(decoded[key], raw[key], f"{where}.{key}")
    elif isinstance(decoded, enum.Enum):
        if decoded.value != raw:
            raise Dropped(f"{where}: {decoded!r} is not {raw!r}")
    elif decoded != raw or type(decoded) is not type(raw):
        raise Dropped(f"{where}: {decoded!r} is not {raw!r}")


class Tour:
    def __init__(self):
        self.checked = []

    def answer(self, name, response, status, model):
        """The decoded answer of `response`, after checking it against its raw JSON."""
        raw = json.loads(response.content) if response.content else None
        if response.status_code != status:
            raise AssertionError(f"{name}: HTTP {response.status_code}, not {status}: {raw}")
        decoded = response.parsed
        if model is None:
            if raw is not None or decoded is not None:
                raise AssertionError(f"{name}: expected no body, got {raw!r}")
        else:
            if type(decoded) is not model:
                raise Dropped(f"{name}: decoded as {type(decoded).__name__}, not {model.__name__}: {raw}")
            compare(decoded, raw, name)
        self.checked.append(f"{name} ({status}{', ' + model.__name__ if model else ''})")
        return decoded, raw


def main():
    generated, base, api_key, user, device_token = sys.argv[1:6]
    sys.path.insert(0, generated)
    from callpush_client import AuthenticatedClient, Client, models as m
    from callpush_client.api.backend import cancel_call, create_call, delete_user_installations
    from callpush_client.api.device import (
        answer_call,
        decline_call,
        delete_installation,
        get_call,
        put_installation,
        put_notifications,
    )
    from callpush_client.api.operations import healthz

    device = AuthenticatedClient(base_url=base, token=device_token, timeout=30)
    backend = AuthenticatedClient(base_url=base, token=api_key, timeout=30)
    tour = Tour()

    # Register the user's phone and tablet, report the tablet's notifications off, renew it.
    body = m.InstallationBody(platform=m.Platform.FCM, token="fcm-token-python-0123456789", ttl_seconds=86400)
    lease, _ = tour.answer("register", put_installation.sync_detailed("phone", client=device, body=body), 200, m.InstallationLease)
    assert lease.installation_id == "phone" and lease.signing_keys, lease
    tablet = m.InstallationBody(platform=m.Platform.HARMONY, token="MAMzLgPythonTablet0123456789")
    tour.answer("register tablet", put_installation.sync_detailed("tablet", client=device, body=tablet), 200, m.InstallationLease)
    off = put_notifications.sync_detailed("tablet", client=device, body=m.NotificationsBody(enabled=False))
    tour.answer("notifications off", off, 204, None)
    renewed, _ = tour.answer("renew", put_installation.sync_detailed("tablet", client=device, body=tablet), 200, m.InstallationLease)
    assert renewed.notifications and renewed.notifications.enabled is False, renewed

    # The backend rings the user; the phone long-polls, then answers.
    ring = m.CreateCallBody(from_=m.CallerBody(id="alice", name="Alice"), to=[user], video=True, ring_seconds=30)
    created, _ = tour.answer("ring", create_call.sync_detailed(client=backend, body=ring), 202, m.CallCreated)
    call_id = created.call_id
    assert len(created.deliveries) == 2, created
    status, _ = tour.answer("long-poll", get_call.sync_detailed(call_id, client=device, wait=1), 200, m.CallStatus)
    assert status.view == m.CallStatusView.STATUS and status.state == m.CallPhase.RINGING, status
    action = m.CallActionBody(installation_id="phone")
    answered, _ = tour.answer("answer", answer_call.sync_detailed(call_id, client=device, body=action), 200, m.CallStatus)
    assert answered.answered_by == "phone", answered
    late = m.CallActionBody(installation_id="tablet")
    refused, _ = tour.answer("decline too late", decline_call.sync_detailed(call_id, client=device, body=late), 409, m.ErrorBody)
    assert refused.error.code == "call_not_ringing" and isinstance(refused.call, m.CallStatus), refused

    # The backend reads the call's details: its deliveries and timeline, once settled.
    for _ in range(100):
        detail, raw = tour.answer("details", get_call.sync_detailed(call_id, client=backend), 200, m.CallDetail)
        if not any(d["status"] in ("pending", "sending") for d in raw["deliveries"]):
            break
        time.sleep(0.1)
    assert detail.view == m.CallDetailView.DETAIL and detail.state == m.CallPhase.ANSWERED, detail
    assert len(detail.deliveries) >= 2 and len(detail.timeline) >= 3, detail
    assert all(isinstance(e.at_ms, int) for e in detail.timeline), detail

    # A second call, cancelled by the backend.
    second, _ = tour.answer("ring again", create_call.sync_detailed(client=backend, body=ring), 202, m.CallCreated)
    cancel = m.CancelBody(reason=m.CancelReason.CALLER_CANCELLED)
    cancelled, _ = tour.answer("cancel", cancel_call.sync_detailed(second.call_id, client=backend, body=cancel), 200, m.CallStatus)
    assert cancelled.state == m.CallPhase.CANCELLED, cancelled
    tour.answer("cancelled details", get_call.sync_detailed(second.call_id, client=backend), 200, m.CallDetail)

    # The user signs out on the phone; the backend removes what is left.
    tour.answer("unregister", delete_installation.sync_detailed("phone", client=device), 204, None)
    gone, _ = tour.answer("unregister again", delete_installation.sync_detailed("phone", client=device), 404, m.ErrorBody)
    assert gone.error.code == "not_found", gone
    removed, _ = tour.answer("remove the user", delete_user_installations.sync_detailed(user, client=backend), 200, m.RemovedInstallations)
    assert removed.removed == 1, removed
    tour.answer("health", healthz.sync_detailed(client=Client(base_url=base)), 200, m.Health)

    # The comparison is not vacuous: a field the client does not declare is caught.
    _, raw = tour.answer("details once more", get_call.sync_detailed(call_id, client=backend), 200, m.CallDetail)
    try:
        compare(m.CallDetail.from_dict({**raw, "surprise": 1}), {**raw, "surprise": 1}, "control")
    except Dropped:
        pass
    else:
        raise AssertionError("the comparison missed a field the client does not declare")

    print(f"python: {len(tour.checked)} answers decoded without losing a field: " + ", ".join(tour.checked))


if __name__ == "__main__":
    main()

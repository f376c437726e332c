"""Hevy: workouts logged in the Hevy app (https://api.hevyapp.com/docs), in Python.

Built with componentize-py against inlet's contract (`cargo xtask build-plugins`).
A first run pages through every workout (`/v1/workouts`, newest first); later runs
ask `/v1/workouts/events` for what changed since the newest change seen, which
also names deleted workouts. The API key (Hevy Pro) goes in the `api-key` header:
the host adds it, the plugin never sees it.

Each workout is an event (its duration as the value) with a block per exercise.
"""

import json
from datetime import datetime
from urllib.parse import urlencode

import wit_world
from componentize_py_types import Err
from wit_world.imports import batches, http, log, state, types

API = "https://api.hevyapp.com/v1"
PAGE_SIZE = 10  # Hevy's largest page
# The newest `updated_at` or `deleted_at` seen: where the next events page starts.
SINCE = "workouts.since"
# The next page of a first run that has not finished: newest-first pages mean the
# cursor above is only known once the last page is in.
BACKFILL_PAGE = "workouts.backfill_page"

CONFIG_SCHEMA = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {},
    "additionalProperties": False,
    "examples": [{}],
})


def fail(error):
    """Leave the export with a typed error: the host decides retries from its kind."""
    raise Err(error)


def get_json(path, **params):
    url = f"{API}{path}?{urlencode(params)}"
    request = http.Request(method=http.Method.GET, url=url, headers=[("accept", "application/json")],
                           body=None, authenticated=True, timeout_ms=None)
    try:
        response = http.send(request)
    except Err as refused:
        fail(host_error(refused.value))
    where = f"{response.status} from {API}{path}"
    if response.status == 401:
        fail(types.PluginError_Unauthorized(where))
    if response.status == 429:
        fail(types.PluginError_RateLimited(types.RateLimited(retry_after_seconds=retry_after(response), message=where)))
    if response.status == 408 or response.status >= 500:
        fail(types.PluginError_Transient(where))
    if not 200 <= response.status < 300:
        fail(types.PluginError_Permanent(f"{where}: {response.body[:300].decode(errors='replace')}"))
    return json.loads(response.body)


def host_error(error):
    if isinstance(error, http.Error_RateLimited):
        return types.PluginError_RateLimited(types.RateLimited(retry_after_seconds=error.value, message="slow down"))
    if isinstance(error, http.Error_Unauthorized):
        return types.PluginError_Unauthorized(error.value)
    if isinstance(error, (http.Error_Denied, http.Error_TooLarge)):
        return types.PluginError_Permanent(f"request refused: {error.value}")
    return types.PluginError_Transient(f"request failed: {error!r}")


def retry_after(response):
    for name, value in response.headers:
        if name.lower() == "retry-after" and value.strip().isdigit():
            return int(value)
    return 60


def millis(rfc3339):
    return int(datetime.fromisoformat(rfc3339).timestamp() * 1000)


def emit(kind, payload):
    try:
        batches.emit(types.RawBatch(kind=kind, payload=json.dumps(payload)))
        batches.checkpoint()
    except Err as failed:
        fail(types.PluginError_Transient(failed.value))


def backfill(since_ms):
    """Every workout that started after `since_ms`, a page at a time, newest first."""
    page, seen, newest = int(state.get(BACKFILL_PAGE) or 1), 0, state.get(SINCE) or ""
    while True:
        body = get_json("/workouts", page=page, pageSize=PAGE_SIZE)
        workouts = [w for w in body["workouts"] if millis(w["start_time"]) >= since_ms]
        newest = max([newest] + [w["updated_at"] for w in body["workouts"]])
        seen += len(workouts)
        last = page >= body["page_count"] or not body["workouts"]
        if last:
            state.delete(BACKFILL_PAGE)
            state.set(SINCE, newest)
        else:
            state.set(BACKFILL_PAGE, str(page + 1))
            state.set(SINCE, newest)
        emit("workouts", {"workouts": workouts})
        log.progress(page, body["page_count"])
        if last:
            return seen
        page += 1


def changes(since):
    """Workouts updated or deleted after `since`; the cursor moves once all are in."""
    page, seen, newest = 1, 0, since
    while True:
        body = get_json("/workouts/events", since=since, page=page, pageSize=PAGE_SIZE)
        events = body["events"]
        for event in events:
            newest = max(newest, event["workout"]["updated_at"] if event["type"] == "updated" else event["deleted_at"])
        seen += len(events)
        last = page >= body["page_count"] or not events
        if last:
            state.set(SINCE, newest)
        emit("events", {"events": events})
        if last:
            return seen
        page += 1


def workout_records(workout, records):
    id = workout["id"]
    start, end = millis(workout["start_time"]), millis(workout["end_time"])
    exercises = workout.get("exercises") or []
    summary = {k: v for k, v in workout.items() if k != "exercises"}
    summary["exercise_count"] = len(exercises)
    records.events.append(types.EventRecord(
        external_id=id, kind="workout", occurred_at=start, actor=None, target=None,
        value=(end - start) / 1000, unit="s", data=json.dumps(summary)))
    for exercise in exercises:
        records.blocks.append(types.BlockRecord(
            external_id=f"{id}/{exercise['index']}", kind="exercise", event_id=id, data=json.dumps(exercise)))


class WitWorld(wit_world.WitWorld):
    def describe(self):
        key = types.ApiKeyAuth(label="Hevy API key (Settings > Developer; needs Hevy Pro)",
                               placement=types.KeyPlacement_Header("api-key"))
        workouts = types.InstanceType(
            id="workouts", name="Workouts",
            description="One event per workout, its duration as the value, with a block per exercise and its sets",
            kind=types.InstanceKind.INTEGRATION, default_schedule=types.Schedule_Interval(3600),
            hosts=["api.hevyapp.com"], config_schema=CONFIG_SCHEMA, default_backfill_days=3650)
        return types.Manifest(
            id="hevy", name="Hevy", version="0.1.0", description="Workouts from the Hevy strength training app",
            auth=types.AuthKind_ApiKey(key), webhook=None, rate_limit=None, quotas=[], needs_raw_credentials=False,
            instance_types=[workouts])

    def fetch(self, request):
        if request.instance_type != "workouts":
            fail(types.PluginError_InvalidConfig(f"there is no instance type {request.instance_type!r}; there is workouts"))
        since = state.get(SINCE)
        try:
            if isinstance(request.mode, types.FetchMode_Backfill):
                seen = backfill(request.mode.value)
            elif state.get(BACKFILL_PAGE) or not since:
                seen = backfill(0)
            else:
                seen = changes(since)
        except (KeyError, TypeError, ValueError) as unexpected:
            fail(types.PluginError_Permanent(f"unexpected data from Hevy: {unexpected!r}"))
        return types.FetchSummary(items_seen=seen, note=None, not_before=None)

    def process(self, batch):
        records = types.Records(objects=[], events=[], blocks=[], deleted=[])
        try:
            payload = json.loads(batch.payload)
            if batch.kind == "workouts":
                for workout in payload["workouts"]:
                    workout_records(workout, records)
            elif batch.kind == "events":
                for event in payload["events"]:
                    if event["type"] == "updated":
                        workout_records(event["workout"], records)
                    elif event["type"] == "deleted":
                        records.deleted.append(types.Tombstone(
                            class_=types.RecordClass.EVENT, kind="workout", external_id=event["id"]))
            else:
                fail(types.PluginError_Permanent(f"unknown batch kind {batch.kind!r}"))
        except (KeyError, TypeError, ValueError) as unexpected:
            fail(types.PluginError_Permanent(f"unexpected data in a {batch.kind} batch: {unexpected!r}"))
        return records

    def handle_webhook(self, delivery):
        fail(types.PluginError_Permanent("Hevy sends no webhooks"))

"""Hevy: workouts, routines and exercise templates from the Hevy app
(https://api.hevyapp.com/docs), in Python.

Built with componentize-py against inlet's contract (`cargo xtask build-plugins`).
The API key (Hevy Pro) goes in the `api-key` header: the host adds it, the plugin
never sees it.

* `workouts`: a first run pages through every workout (`/v1/workouts`, newest
  first); later runs ask `/v1/workouts/events` for what changed since the newest
  change seen, which also names deleted workouts. Each workout is an event (its
  duration as the value) with a block per exercise and its sets.
* `routines` and `exercise-templates`: listings that never say what was removed,
  so each run reads them whole, and what two complete reads in a row no longer
  list becomes a tombstone, only once the last page is in (as the Rust SDK's
  `snapshot` does for a listing paged by position).
"""

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import wit_world
from componentize_py_types import Err
from wit_world.imports import batches, http, log, state, types

API = "https://api.hevyapp.com/v1"
PAGE_SIZE = 10  # Hevy's largest page
# The newest `updated_at` or `deleted_at` seen: where the next events page starts.
SINCE = "workouts.since"
# The next page of a backfill that has not finished, and when it began: once its
# last page is in, the events since a little before that are what it may have
# missed (a workout logged, edited or deleted while it paged, perhaps between
# runs), so that is where a first backfill leaves the cursor above.
BACKFILL_PAGE = "workouts.backfill_page"
BACKFILL_STARTED = "workouts.backfill_started"
# Allowed between this host's clock and Hevy's.
CLOCK_MARGIN = timedelta(minutes=5)
# The batch of tombstones a complete read of a listing ends with.
REMOVED = "removed"
# The host caps a state value at 64 KiB: a listing's ids are kept in parts below that.
PART_BYTES = 48 * 1024
API_KEY_ADVICE = "check it is a Hevy Pro API key from hevy.com/settings?developer"

HOUR, DAY = 3600, 86400

CONFIG_SCHEMA = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {},
    "additionalProperties": False,
    "examples": [{}],
})


class Listing:
    """A Hevy listing read whole each run: `GET path` → `{page, page_count, <field>: [...]}`,
    each item an object record of `kind`, named by its `title`."""

    def __init__(self, instance_type, path, field, kind):
        self.instance_type, self.path, self.field, self.kind = instance_type, path, field, kind


LISTINGS = [
    Listing("routines", "/routines", "routines", "routine"),
    Listing("exercise-templates", "/exercise_templates", "exercise_templates", "exercise_template"),
]
# By instance type, for `fetch`, and by the batch kind their pages are emitted as, for `process`.
LISTED_BY_TYPE = {listing.instance_type: listing for listing in LISTINGS}
LISTED_BY_BATCH = {listing.field: listing for listing in LISTINGS}


def fail(error):
    """Leave the export with a typed error: the host decides retries from its kind."""
    raise Err(error)


def refused_key(where):
    """Hevy's key never expires and cannot be refreshed: a refused one was entered
    wrong, revoked, or is not a Pro account's, which only the operator can fix."""
    return types.PluginError_InvalidConfig(f"Hevy refused the API key ({where}): {API_KEY_ADVICE}")


def get_json(path, past_the_end=False, **params):
    """A page of `path`; `None` for a 404 when `past_the_end` (a page number past the last)."""
    url = f"{API}{path}?{urlencode(params)}"
    request = http.Request(method=http.Method.GET, url=url, headers=[("accept", "application/json")],
                           body=None, authenticated=True, timeout_ms=None)
    try:
        response = http.send(request)
    except Err as refused:
        fail(host_error(refused.value))
    where = f"{response.status} from {API}{path}"
    if response.status == 401:
        fail(refused_key(where))
    if response.status == 429:
        fail(types.PluginError_RateLimited(types.RateLimited(retry_after_seconds=retry_after(response), message=where)))
    if response.status == 408 or response.status >= 500:
        fail(types.PluginError_Transient(where))
    if response.status == 404 and past_the_end:
        return None
    if not 200 <= response.status < 300:
        fail(types.PluginError_Permanent(f"{where}: {response.body[:300].decode(errors='replace')}"))
    return json.loads(response.body)


def host_error(error):
    if isinstance(error, http.Error_RateLimited):
        return types.PluginError_RateLimited(types.RateLimited(retry_after_seconds=error.value, message="slow down"))
    if isinstance(error, http.Error_Unauthorized):
        # The host answers a 401 to an authenticated request with this.
        return refused_key(error.value)
    if isinstance(error, (http.Error_Denied, http.Error_TooLarge)):
        return types.PluginError_Permanent(f"request refused: {error.value}")
    return types.PluginError_Transient(f"request failed: {error!r}")


def retry_after(response):
    for name, value in response.headers:
        if name.lower() == "retry-after" and value.strip().isdigit():
            return int(value)
    return 60


def stamp(moment):
    """An RFC 3339 time in UTC, to the millisecond, as Hevy writes its own."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def millis(rfc3339):
    return int(datetime.fromisoformat(rfc3339).timestamp() * 1000)


def emit(kind, payload):
    try:
        batches.emit(types.RawBatch(kind=kind, payload=json.dumps(payload)))
    except Err as failed:
        fail(types.PluginError_Transient(failed.value))


def checkpoint():
    try:
        batches.checkpoint()
    except Err as failed:
        fail(types.PluginError_Transient(failed.value))


def backfill(since_ms):
    """Every workout that started after `since_ms`, a page at a time, newest first.
    The events cursor is left where it was, or, on a first backfill, set to a
    little before the backfill began: never past a change it did not read."""
    page, seen = int(state.get(BACKFILL_PAGE) or 1), 0
    started = state.get(BACKFILL_STARTED) or stamp(datetime.now(timezone.utc) - CLOCK_MARGIN)
    resumed_past_the_end = False
    while True:
        body = get_json("/workouts", past_the_end=page > 1 and not resumed_past_the_end, page=page, pageSize=PAGE_SIZE)
        if body is None:
            # Resumed past the last page: workouts were deleted while it waited, and
            # the pages shifted. Read the list again from the start, once.
            page, resumed_past_the_end = 1, True
            continue
        workouts = [w for w in body["workouts"] if millis(w["start_time"]) >= since_ms]
        seen += len(workouts)
        last = page >= body["page_count"] or not body["workouts"]
        if last:
            state.delete(BACKFILL_PAGE)
            state.delete(BACKFILL_STARTED)
            if not state.get(SINCE):
                state.set(SINCE, started)
        else:
            state.set(BACKFILL_PAGE, str(page + 1))
            state.set(BACKFILL_STARTED, started)
        emit("workouts", {"workouts": workouts})
        checkpoint()
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
        checkpoint()
        if last:
            return seen
        page += 1


def read_whole(listing):
    """Every page of a listing, then tombstones for what this complete read and the
    one before it missed. One read is not enough: the pages are numbered, and an
    item deleted while the read is between pages moves the next one onto a page
    already read. A run that fails midway never gets there, so it deletes nothing,
    and the previous complete read stays the reference."""
    page, seen = 1, set()
    while True:
        body = get_json(listing.path, past_the_end=page > 1, page=page, pageSize=PAGE_SIZE)
        if body is None:
            break  # Items deleted during the read took the last page with them.
        items = body[listing.field]
        seen.update(item["id"] for item in items)
        emit(listing.field, {listing.field: items})
        checkpoint()
        log.progress(page, body["page_count"])
        if page >= body["page_count"] or not items:
            break
        page += 1
    missing = stored_ids(listing.instance_type) - seen
    missed_before = stored_ids(missed_name(listing))
    gone = sorted(missing & missed_before)
    if gone:
        emit(REMOVED, {"kind": listing.kind, "external_ids": gone})
    # Compared again by the next read, as if this one had listed them.
    store_ids(missed_name(listing), missing - missed_before)
    store_ids(listing.instance_type, seen | (missing - missed_before))
    checkpoint()
    return len(seen)


def missed_name(listing):
    """Where the ids the last complete read of `listing` missed for the first time are kept."""
    return f"{listing.instance_type}.missed"


def parts_key(name):
    return f"{name}.ids.parts"


def part_key(name, index):
    return f"{name}.ids.{index}"


def stored_ids(name):
    """The ids of the previous complete read of listing `name`."""
    ids = set()
    for index in range(int(state.get(parts_key(name)) or 0)):
        ids.update(json.loads(state.get(part_key(name, index)) or "[]"))
    return ids


def store_ids(name, ids):
    """Keep `ids` as the reference for the next complete read, in parts below the cap."""
    old_parts = int(state.get(parts_key(name)) or 0)
    parts, size = [[]], 0
    for id in sorted(ids):
        # The id as JSON writes it (quoted, escaped), and a comma.
        id_bytes = len(json.dumps(id)) + 1
        if size + id_bytes > PART_BYTES and parts[-1]:
            parts.append([])
            size = 0
        size += id_bytes
        parts[-1].append(id)
    for index, part in enumerate(parts):
        state.set(part_key(name, index), json.dumps(part, separators=(",", ":")))
    for index in range(len(parts), old_parts):
        state.delete(part_key(name, index))
    state.set(parts_key(name), str(len(parts)))


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


def listed_object(kind, item):
    return types.ObjectRecord(external_id=item["id"], kind=kind, name=item.get("title"), data=json.dumps(item))


def instance_type(id, name, description, every_seconds):
    return types.InstanceType(
        id=id, name=name, description=description, kind=types.InstanceKind.INTEGRATION,
        default_schedule=types.Schedule_Interval(every_seconds), hosts=["api.hevyapp.com"],
        config_schema=CONFIG_SCHEMA, default_backfill_days=3650)


class WitWorld(wit_world.WitWorld):
    def describe(self):
        key = types.ApiKeyAuth(label="Hevy API key (Settings > Developer; needs Hevy Pro)",
                               placement=types.KeyPlacement_Header("api-key"))
        # Workouts are logged through the day and the events endpoint makes a
        # check cheap; routines are edited now and then; the exercise library
        # changes only when the user adds a custom exercise.
        instance_types = [
            instance_type("workouts", "Workouts",
                          "One event per workout, its duration as the value, with a block per exercise and its sets",
                          HOUR),
            instance_type("routines", "Routines",
                          "One object per saved routine, with its exercises and planned sets", 6 * HOUR),
            instance_type("exercise-templates", "Exercise templates",
                          "One object per exercise in the library, Hevy's own and the user's custom ones", DAY),
        ]
        return types.Manifest(
            id="hevy", name="Hevy", version="0.2.0",
            description="Workouts, routines and exercise templates from the Hevy strength training app",
            auth=types.AuthKind_ApiKey(key), webhook=None, rate_limit=None, quotas=[], needs_raw_credentials=False,
            instance_types=instance_types)

    def fetch(self, request):
        try:
            if request.instance_type in LISTED_BY_TYPE:
                seen = read_whole(LISTED_BY_TYPE[request.instance_type])
            elif request.instance_type != "workouts":
                names = ", ".join(["workouts", *LISTED_BY_TYPE])
                fail(types.PluginError_InvalidConfig(f"there is no instance type {request.instance_type!r}; there are {names}"))
            elif isinstance(request.mode, types.FetchMode_Backfill):
                seen = backfill(request.mode.value)
            elif state.get(BACKFILL_PAGE) or not state.get(SINCE):
                seen = backfill(0)
            else:
                seen = changes(state.get(SINCE))
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
            elif batch.kind in LISTED_BY_BATCH:
                kind = LISTED_BY_BATCH[batch.kind].kind
                records.objects.extend(listed_object(kind, item) for item in payload[batch.kind])
            elif batch.kind == REMOVED:
                records.deleted.extend(
                    types.Tombstone(class_=types.RecordClass.OBJECT, kind=payload["kind"], external_id=id)
                    for id in payload["external_ids"])
            else:
                fail(types.PluginError_Permanent(f"unknown batch kind {batch.kind!r}"))
        except (KeyError, TypeError, ValueError) as unexpected:
            fail(types.PluginError_Permanent(f"unexpected data in a {batch.kind} batch: {unexpected!r}"))
        return records

    def handle_webhook(self, delivery):
        fail(types.PluginError_Permanent("Hevy sends no webhooks"))

-- What the console draws: when each run entered each state (its timeline) and the slot lag it reported over time.
-- Recorded by a trigger, so every writer of ``runs`` (the state machine, recovery, any service version) keeps them
-- without knowing about them. ``timeline``: [{"state", "at"}]; ``lag_samples``: [[epoch seconds, lag bytes]],
-- at most one sample per 10 s and the latest 360 (an hour), so a continuous run's row stays small.
ALTER TABLE runs
    ADD COLUMN timeline    jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN lag_samples jsonb NOT NULL DEFAULT '[]';

UPDATE runs SET timeline = jsonb_build_array(jsonb_build_object('state', 'queued', 'at', created_at))
    || CASE WHEN finished_at IS NOT NULL
            THEN jsonb_build_array(jsonb_build_object('state', state, 'at', finished_at)) ELSE '[]' END;

CREATE FUNCTION runs_record_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_at double precision;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        NEW.timeline := NEW.timeline || jsonb_build_array(jsonb_build_object('state', NEW.state, 'at', now()));
    END IF;
    IF NEW.lag_bytes IS NOT NULL THEN
        last_at := (NEW.lag_samples -> -1 ->> 0)::double precision;
        IF last_at IS NULL OR last_at <= extract(epoch FROM now()) - 10 THEN
            NEW.lag_samples := jsonb_path_query_array(
                NEW.lag_samples || jsonb_build_array(jsonb_build_array(round(extract(epoch FROM now())), NEW.lag_bytes)),
                '$[last - 359 to last]'
            );
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER runs_history BEFORE INSERT OR UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION runs_record_history();

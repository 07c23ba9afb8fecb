// PostGraphile 5's configuration for the bench (bench/run copies it into bench/.node5, where the
// import resolves): the amber preset, as the anchor run used, without the plugin that lets
// lists be ordered only by indexed columns, so that children and sites can be ordered by name,
// then id, as Mandate and PostGraphile 4 order them. The connection, schema, host and port come
// from the command line.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

export default {
  extends: [PostGraphileAmberPreset],
  disablePlugins: ["PgIndexBehaviorsPlugin"],
};

-- Where `esqase projections rebuild` builds a projection's new tables while the old ones keep
-- serving: one table of the same name here for each table of the projection, filled a chunk at
-- a time (each chunk commits with the rebuild's place in `checkpoints`, named
-- `rebuild:<projection>`, so an interrupted rebuild goes on from there), then moved into the
-- live schema in place of the old tables in one short transaction. Between rebuilds it is empty.
CREATE SCHEMA esqase_rebuild;

"""``lrfer batch``: photo and video archives in, Parquet out; in this process or on a Ray cluster.

:func:`~lrfer.batch.run.run_batch` lists the sources (:mod:`.sources`), skips the files an earlier
run already recorded in the output folder, analyses the rest with :class:`~.analyze.FileAnalyzer`
(one Recognizer: the torch-free runtime) in this process or on Ray actors (:mod:`.on_ray`), and
writes the rows to Parquet shards (:mod:`.table`). A shard holds whole files and is written
atomically, so whatever is in the folder is complete, and a rerun finishes an interrupted run.

Nothing here is imported by ``import lrfer``: pyarrow and Ray load only when a batch runs.
"""

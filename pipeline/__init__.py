"""The shared data layer: settings, contracts, source mappings, lake paths, warehouse, run
summaries, Airflow assets and the sample generator. It imports no other package of this project;
``jobs``, ``expectations``, ``behavior_model`` and the DAGs import it."""

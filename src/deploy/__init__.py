"""Put the pipeline to work on a Databricks workspace with the databricks-sdk.

`upload` copies local raw files into the landing volume the bundle declares;
`follow` triggers the deployed job and follows its run to the end. Both take a
`WorkspaceClient` made by the caller (`workspace.connect` for the CLI).
"""

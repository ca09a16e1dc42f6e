"""The case domain and the BPMN engine: models, deployment, cases, work items. No Flask imports."""

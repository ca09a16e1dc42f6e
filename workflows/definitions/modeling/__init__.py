"""Reading BPMN the way other modelers write it (Camunda 7/8, Flowable/Activiti, bpmn.io, Signavio): who
works a task, and later expressions, timers, forms and multi-file deployments (issue 14)."""

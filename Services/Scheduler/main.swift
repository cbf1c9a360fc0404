import CairnRoles

// cairn-scheduler: see CairnConfiguration for its environment variables.
RoleEntryPoint.useEventLoopsForTasks()
await RoleEntryPoint.run(.scheduler)

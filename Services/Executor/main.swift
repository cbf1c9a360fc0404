import CairnRoles

// cairn-executor: see CairnConfiguration for its environment variables.
RoleEntryPoint.useEventLoopsForTasks()
await RoleEntryPoint.run(.executor)

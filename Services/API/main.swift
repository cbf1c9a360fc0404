import CairnRoles

// cairn-api: see CairnConfiguration for its environment variables.
RoleEntryPoint.useEventLoopsForTasks()
await RoleEntryPoint.run(.api)

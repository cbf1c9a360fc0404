import CairnRoles

// cairn-gateway: see CairnConfiguration for its environment variables.
RoleEntryPoint.useEventLoopsForTasks()
await RoleEntryPoint.run(.gateway)

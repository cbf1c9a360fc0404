import CairnRoles

// cairn-event-api: see CairnConfiguration for its environment variables.
RoleEntryPoint.useEventLoopsForTasks()
await RoleEntryPoint.run(.eventAPI)

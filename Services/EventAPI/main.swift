import CairnRoles

// cairn-event-api: see CairnConfiguration for its environment variables.
await RoleEntryPoint.run(.eventAPI)

import CairnRoles

// cairn-api: see CairnConfiguration for its environment variables.
await RoleEntryPoint.run(.api)

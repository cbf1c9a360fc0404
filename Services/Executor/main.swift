import CairnRoles

// cairn-executor: see CairnConfiguration for its environment variables.
await RoleEntryPoint.run(.executor)

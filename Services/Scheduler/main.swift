import CairnRoles

// cairn-scheduler: see CairnConfiguration for its environment variables.
await RoleEntryPoint.run(.scheduler)

import CairnRoles

// cairn-gateway: see CairnConfiguration for its environment variables.
await RoleEntryPoint.run(.gateway)

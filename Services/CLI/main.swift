import CairnRoles

// cairn: the CLI; `cairn dev` runs every role in this process.
RoleEntryPoint.useEventLoopsForTasks()
await Cairn.start()

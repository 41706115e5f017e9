/* A task's memory cgroup, read through CO-RE: the cgroup of its memory controller's css, in the
 * hierarchy that holds that controller (v1 `memory` or cgroup2). Not bpf_get_current_cgroup_id(): that
 * is the v2 cgroup, which has no memory controller on v1 hosts (platform.md). */
#ifndef MEMSIGHT_MEMCG_BPF_H
#define MEMSIGHT_MEMCG_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

static __always_inline struct cgroup *memcg_of(struct task_struct *task)
{
	struct cgroup_subsys_state *css = 0;
	struct css_set *cgroups;
	int id;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0;
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	cgroups = BPF_CORE_READ(task, cgroups);
	if (!cgroups || bpf_core_read(&css, sizeof(css), &cgroups->subsys[id]) || !css)
		return 0;
	return BPF_CORE_READ(css, cgroup);
}

/* The memory cgroup's id: its directory's inode (kernfs_node id); 0 when unknown. */
static __always_inline __u64 memcg_id_of(struct task_struct *task)
{
	struct cgroup *cg = memcg_of(task);

	return cg ? BPF_CORE_READ(cg, kn, id) : 0;
}

/* Whether the task's memory cgroup is the one with this id, at this depth of the hierarchy (the root
 * is 0), or below it: its ancestor at that depth is that cgroup. */
static __always_inline int memcg_within(struct task_struct *task, __u64 id, __u32 level)
{
	struct cgroup *cg = memcg_of(task), *at = 0;

	if (!cg || (__u32)BPF_CORE_READ(cg, level) < level)
		return 0;
	if (bpf_core_read(&at, sizeof(at), &cg->ancestors[level]) || !at)
		return 0;
	return BPF_CORE_READ(at, kn, id) == id;
}

#endif /* MEMSIGHT_MEMCG_BPF_H */

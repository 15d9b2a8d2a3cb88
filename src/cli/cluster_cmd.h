/* hvm cluster: Hyper-V's failover clustering vocabulary over Pacemaker
 * (cluster_cmd.c). */
#ifndef HVM_CLI_CLUSTER_CMD_H
#define HVM_CLI_CLUSTER_CMD_H

struct cli_args;

int cmd_cluster_status(const struct cli_args *a);
int cmd_cluster_add(const struct cli_args *a);
int cmd_cluster_remove(const struct cli_args *a);
int cmd_cluster_move(const struct cli_args *a);
int cmd_cluster_offline(const struct cli_args *a);
int cmd_cluster_online(const struct cli_args *a);
int cmd_cluster_maintenance(const struct cli_args *a);
int cmd_cluster_drain(const struct cli_args *a);
int cmd_cluster_resume(const struct cli_args *a);
int cmd_cluster_fence_test(const struct cli_args *a);

#endif

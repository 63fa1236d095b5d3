"""`bkdoctor cluster-job`: bkdoctor as a Job/DaemonSet/CronJob inside the cluster, and its history there."""

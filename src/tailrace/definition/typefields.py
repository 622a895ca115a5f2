"""The field groups the object types of typetable.py share (every activity's, data node's,
resource's...), and `object_type`, which builds one type from its fields."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from tailrace.definition.types import (
    Category,
    FieldSpec,
    ObjectType,
    boolean,
    enum,
    fs,
    integer,
    period,
    ref,
    s,
)

A, D, R, P = Category.ACTIVITY, Category.DATA_NODE, Category.RESOURCE, Category.PRECONDITION


PARENT = ref("parent")
SCHEDULE_TYPE = enum("scheduleType", "cron", "ondemand", "timeseries")
FAILURE_AND_RERUN = enum("failureAndRerunMode", "none", "cascade")
ACTIONS = (
    ref("onFail", Category.ACTION, multi=True),
    ref("onLateAction", Category.ACTION, multi=True),
    ref("onSuccess", Category.ACTION, multi=True),
)
TIMEOUTS = (
    s("attemptStatus"),
    period("attemptTimeout"),
    period("lateAfterTimeout"),
    integer("maximumRetries"),
    period("reportProgressTimeout"),
    period("retryDelay", min_minutes=2),
)
# Fields every activity, data node and resource takes.
RUNNABLE = (
    PARENT,
    ref("schedule", Category.SCHEDULE),
    SCHEDULE_TYPE,
    FAILURE_AND_RERUN,
    integer("maxActiveInstances"),
    s("pipelineLogUri"),
    *ACTIONS,
    *TIMEOUTS,
)
DEPENDS = (
    ref("dependsOn", A, D, R, multi=True),
    ref("precondition", P, multi=True),
)
ROUTING = (ref("runsOn", R), s("workerGroup"))
ACTIVITY = (*RUNNABLE, *DEPENDS, *ROUTING, ref("input", D, multi=True), ref("output", D, multi=True))
DATA_NODE = (*RUNNABLE, *DEPENDS, *ROUTING)
RESOURCE = (
    *RUNNABLE,
    ref("runsOn", R, not_allowed=True),
    s("workerGroup", not_allowed=True),
    enum("actionOnResourceFailure", "retryall", "retrynone"),
    enum("actionOnTaskFailure", "continue", "terminate"),
    ref("httpProxy", "HttpProxy"),
    period("initTimeout"),
    s("region"),
    s("role"),
    s("resourceRole"),
    period("terminateAfter"),
    boolean("useOnDemandOnLastAttempt"),
    *fs("availabilityZone keyPair subnetId"),
)
PRECONDITION = (PARENT, FAILURE_AND_RERUN, *ACTIONS, *TIMEOUTS, period("preconditionTimeout"))
TASK_CONFIG = (
    ref("preActivityTaskConfig", "ShellScriptConfig"),
    ref("postActivityTaskConfig", "ShellScriptConfig"),
)
RESIZE = (boolean("resizeClusterBeforeRunning"), integer("resizeClusterMaxInstances"))
SQL_NODE = (
    s("table"),
    s("createTableSql"),
    ref("database", Category.DATABASE),
    s("insertQuery"),
    s("schemaName"),
    s("selectQuery"),
)
EMR_CONFIGS = (
    "configuration",
    "coreGroupConfiguration",
    "masterGroupConfiguration",
    "taskGroupConfiguration",
)
# EmrCluster fields that shape an EMR cluster: accepted, and reported as ignored by validation
# (the cluster here is the [spark] master, or the local worker pool).
_EMR_SHAPE = (
    "amiVersion coreInstanceBidPrice coreInstanceType emrManagedMasterSecurityGroupId "
    "emrManagedSlaveSecurityGroupId serviceAccessSecurityGroupId enableDebugging hadoopVersion "
    "masterInstanceBidPrice masterInstanceType releaseLabel taskInstanceBidPrice taskInstanceType "
    "visibleToAllUsers additionalMasterSecurityGroupIds additionalSlaveSecurityGroupIds applications "
    "bootstrapAction supportedProducts coreInstanceCount taskInstanceCount emrLogUri installHive "
    "hadoopSchedulerType coreEbsConfiguration masterEbsConfiguration taskEbsConfiguration "
    "configuration coreGroupConfiguration masterGroupConfiguration taskGroupConfiguration"
)
EMR_CLUSTER_IGNORED = frozenset(_EMR_SHAPE.split())
ON_EMR = "needs Amazon EMR (a Hadoop cluster); the local worker pool cannot run it"
NO_AWS = "needs {service}, which this installation does not reach"
ROUTED = (("runsOn", "workerGroup"),)


def object_type(
    name: str,
    category: Category,
    fields: Iterable[FieldSpec],
    *,
    page: str,
    required: tuple[str, ...] = (),
    one_of: tuple[tuple[str, ...], ...] = (),
    exclusive: tuple[tuple[str, str, str], ...] = (),
    runs_here: bool = True,
    limited: bool = False,
    note: str = "",
    deprecated: str = "",
) -> ObjectType:
    specs: dict[str, FieldSpec] = {}
    for f in fields:
        specs[f.name] = f
    return ObjectType(
        name=name,
        category=category,
        fields=MappingProxyType(specs),
        required=required,
        one_of=one_of,
        exclusive=exclusive,
        runs_here=runs_here,
        limited=limited,
        note=note,
        deprecated=deprecated,
        doc_page=page,
        schedule_needed=category in (A, D, R),
    )

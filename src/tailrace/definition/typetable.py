"""Every object type of the AWS Data Pipeline Developer Guide (2019), as data.

Field lists come from the guide's dp-object-*.md pages (required fields, 'one of' groups, slot
types); fields that published samples use but the 2019 pages do not list carry a `note`.
`runs_here`/`note` say what this installation does with each type.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tailrace.definition.typefields import (
    ACTIVITY,
    DATA_NODE,
    EMR_CONFIGS,
    ON_EMR,
    PARENT,
    PRECONDITION,
    RESIZE,
    RESOURCE,
    ROUTED,
    SQL_NODE,
    TASK_CONFIG,
    A,
    D,
    P,
    R,
    object_type,
)
from tailrace.definition.types import (
    SAMPLES,
    Category,
    FieldSpec,
    ObjectType,
    boolean,
    datetime_,
    double,
    enum,
    fs,
    integer,
    period,
    ref,
    s,
)

_TYPES = [
    # -- schedule -------------------------------------------------------------------------------
    object_type(
        "Schedule",
        Category.SCHEDULE,
        [
            PARENT,
            period("period", min_minutes=15, max_minutes=3 * 366 * 1440),
            enum("startAt", "FIRST_ACTIVATION_DATE_TIME", "ONDEMAND_ACTIVATION_TIME"),
            datetime_("startDateTime"),
            datetime_("endDateTime"),
            integer("occurrences"),
            integer("maxActiveInstances", note=SAMPLES),
        ],
        page="dp-object-schedule",
        required=("period",),
        one_of=(("startAt", "startDateTime"),),
        exclusive=(("startDateTime", "startAt", "error"), ("endDateTime", "occurrences", "error")),
        note="periods of cron, timeseries and ondemand pipelines, with backfill",
    ),
    # -- data nodes -----------------------------------------------------------------------------
    object_type(
        "S3DataNode",
        D,
        [
            *DATA_NODE,
            *fs("directoryPath filePath manifestFilePath"),
            enum("compression", "none", "gzip"),
            ref("dataFormat", Category.DATA_FORMAT),
            enum("s3EncryptionType", "SERVER_SIDE_ENCRYPTION", "NONE"),
        ],
        page="dp-object-s3datanode",
        one_of=(("directoryPath", "filePath"),),
        exclusive=(("directoryPath", "filePath", "error"),),
        note="s3:// paths on the configured object store (a local directory by default)",
    ),
    object_type(
        "SqlDataNode",
        D,
        [*DATA_NODE, *SQL_NODE],
        page="dp-object-sqldatanode",
        required=("table",),
        note="tables on PostgreSQL, MySQL/MariaDB, SQLite or DuckDB through its database (JdbcDatabase, "
        "RdsDatabase or RedshiftDatabase); on the service only the hosts [databases.allowed] lists",
    ),
    object_type(
        "MySqlDataNode",
        D,
        [*DATA_NODE, *SQL_NODE, *fs(samples="connectionString username *password")],
        page="dp-object-mysqldatanode",
        required=("table",),
        note="as SqlDataNode, through its database or its own connectionString/username/*password "
        "(jdbc:mysql:, jdbc:mariadb:)",
        deprecated="use SqlDataNode",
    ),
    object_type(
        "DynamoDBDataNode",
        D,
        [
            *DATA_NODE,
            *fs("region tableName"),
            ref("dataFormat", Category.DATA_FORMAT),
            double("readThroughputPercent"),
            double("writeThroughputPercent"),
        ],
        page="dp-object-dynamodbdatanode",
        required=("tableName",),
        limited=True,
        note="a table at the configured DynamoDB endpoint (dynamodb_endpoint_url), with HiveCopyActivity "
        "and RedshiftCopyActivity; read/writeThroughputPercent are ignored",
    ),
    object_type(
        "RedshiftDataNode",
        D,
        [
            *DATA_NODE,
            *fs("tableName createTableSql schemaName", multi="primaryKeys"),
            ref("database", Category.DATABASE),
        ],
        page="dp-object-redshiftdatanode",
        required=("database", "tableName"),
        limited=True,
        note="a PostgreSQL table (schemaName.tableName) of the RedshiftDatabase's mapped PostgreSQL; "
        "primaryKeys are the merge key",
    ),
    # -- activities -----------------------------------------------------------------------------
    object_type(
        "CopyActivity",
        A,
        ACTIVITY,
        page="dp-object-copyactivity",
        one_of=ROUTED,
        note="S3/file to S3/file, and SqlDataNode/MySqlDataNode tables to or from CSV/TSV files, record "
        "by record, in one transaction or one atomic output",
    ),
    object_type(
        "ShellCommandActivity",
        A,
        [*ACTIVITY, *fs("command scriptUri stderr stdout", multi="scriptArgument", bools="stage")],
        page="dp-object-shellcommandactivity",
        one_of=(("command", "scriptUri"), *ROUTED),
        exclusive=(("command", "scriptUri", "error"), ("scriptArgument", "scriptUri", "warning")),
        note="runs the command with /bin/sh on a worker, with S3 staging directories when stage is true",
    ),
    object_type(
        "HiveActivity",
        A,
        [
            *ACTIVITY,
            *TASK_CONFIG,
            *RESIZE,
            *fs("hiveScript scriptUri hadoopQueue", multi="scriptVariable", bools="stage"),
        ],
        page="dp-object-hiveactivity",
        one_of=(("hiveScript", "scriptUri"), *ROUTED),
        exclusive=(("hiveScript", "scriptUri", "error"),),
        note="Hive SQL translated to DuckDB; ${input1}/${output1} staged from the data nodes",
    ),
    object_type(
        "HiveCopyActivity",
        A,
        [*ACTIVITY, *TASK_CONFIG, *RESIZE, s("filterSql")],
        page="dp-object-hivecopyactivity",
        one_of=ROUTED,
        limited=True,
        note="S3 to S3 on the Hive engine; DynamoDB to S3, S3 to DynamoDB and DynamoDB to DynamoDB "
        "through boto3 (items as DynamoDB JSON lines), filterSql on the input format's columns",
    ),
    object_type(
        "PigActivity",
        A,
        [
            *ACTIVITY,
            *TASK_CONFIG,
            *RESIZE,
            *fs("script scriptUri", multi="scriptVariable", bools="stage", samples="generatedScriptsPath"),
        ],
        page="dp-object-pigactivity",
        one_of=(("script", "scriptUri"), *ROUTED),
        exclusive=(("script", "scriptUri", "error"),),
        runs_here=False,
        note="Pig is not available; " + ON_EMR,
    ),
    object_type(
        "EmrActivity",
        A,
        [*ACTIVITY, *RESIZE, *fs(multi="step preStepCommand postStepCommand")],
        page="dp-object-emractivity",
        one_of=ROUTED,
        note="steps `command-runner.jar,spark-submit,...` run with spark-submit on the [spark] master and "
        "hive-script --run-hive-script steps on the script engine; any other jar is refused at run time",
    ),
    object_type(
        "HadoopActivity",
        A,
        [*ACTIVITY, *TASK_CONFIG, *fs("jarUri mainClass hadoopQueue", multi="argument")],
        page="dp-object-hadoopactivity",
        required=("jarUri",),
        one_of=ROUTED,
        runs_here=False,
        note="a MapReduce jar: " + ON_EMR,
    ),
    object_type(
        "SqlActivity",
        A,
        [
            *ACTIVITY,
            *fs("script scriptUri queue", multi="scriptArgument"),
            ref("database", Category.DATABASE),
        ],
        page="dp-object-sqlactivity",
        required=("database",),
        one_of=(("script", "scriptUri"), *ROUTED),
        exclusive=(("script", "scriptUri", "error"),),
        note="scripts (with ? filled in order from scriptArgument) in one transaction on PostgreSQL, "
        "MySQL/MariaDB, SQLite or DuckDB, Redshift as its mapped PostgreSQL; queue is ignored",
    ),
    object_type(
        "RedshiftCopyActivity",
        A,
        [
            *ACTIVITY,
            *fs("queue transformSql", multi="commandOptions"),
            enum("insertMode", "KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"),
        ],
        page="dp-object-redshiftcopyactivity",
        required=("insertMode",),
        one_of=ROUTED,
        limited=True,
        note="S3 or DynamoDB into a RedshiftDataNode's PostgreSQL table with each insertMode (via a "
        "staging table, transformSql, one transaction), or the table out to S3; a few commandOptions",
    ),
    # -- resources ------------------------------------------------------------------------------
    object_type(
        "Ec2Resource",
        R,
        [
            *RESOURCE,
            *fs(
                "imageId instanceType runAsUser spotBidPrice",
                multi="securityGroupIds securityGroups",
                ints="instanceCount minInstanceCount",
                bools="associatePublicIpAddress",
                samples="logUri",
            ),
        ],
        page="dp-object-ec2resource",
        required=("role", "resourceRole"),
        note="a pool of local worker threads for each resource instance; no EC2 instance",
    ),
    object_type(
        "EmrCluster",
        R,
        [
            *RESOURCE,
            *fs(
                "amiVersion coreInstanceBidPrice coreInstanceType emrManagedMasterSecurityGroupId "
                "emrManagedSlaveSecurityGroupId serviceAccessSecurityGroupId enableDebugging hadoopVersion "
                "masterInstanceBidPrice masterInstanceType releaseLabel taskInstanceBidPrice taskInstanceType "
                "visibleToAllUsers",
                multi="additionalMasterSecurityGroupIds additionalSlaveSecurityGroupIds applications "
                "bootstrapAction supportedProducts",
                ints="coreInstanceCount taskInstanceCount",
                samples="emrLogUri installHive",
            ),
            *(ref(n, "EmrConfiguration", multi=True) for n in EMR_CONFIGS),
            *(
                ref(n, "EbsConfiguration")
                for n in ("coreEbsConfiguration", "masterEbsConfiguration", "taskEbsConfiguration")
            ),
            enum(
                "hadoopSchedulerType",
                "PARALLEL_FAIR_SCHEDULING",
                "PARALLEL_CAPACITY_SCHEDULING",
                "DEFAULT_SCHEDULER",
            ),
        ],
        page="dp-object-emrcluster",
        note="a local worker pool for each resource instance; its Hive runs on hive_engine (DuckDB), or "
        "on Spark with [spark] emr_cluster = true; cluster-shape fields are accepted and ignored",
    ),
    # -- preconditions --------------------------------------------------------------------------
    object_type(
        "S3KeyExists",
        P,
        [*PRECONDITION, *fs("role s3Key")],
        page="dp-object-S3KeyExists",
        required=("role", "s3Key"),
        note="checks the key on the configured object store",
    ),
    object_type(
        "S3PrefixNotEmpty",
        P,
        [*PRECONDITION, *fs("role s3Prefix")],
        page="dp-object-s3prefixnotempty",
        required=("role", "s3Prefix"),
        note="lists the prefix on the configured object store",
    ),
    *(
        object_type(
            name,
            P,
            [*PRECONDITION, *fs("role tableName")],
            page=f"dp-{name.lower()}",
            required=("role", "tableName"),
            note="asks the configured DynamoDB endpoint through boto3; role is ignored",
        )
        for name in ("DynamoDBTableExists", "DynamoDBDataExists")
    ),
    object_type(
        "Exists",
        P,
        PRECONDITION,
        page="dp-object-exists",
        note="true when the data node it guards exists (S3 path, SQL table or DynamoDB table)",
    ),
    object_type(
        "ShellCommandPrecondition",
        P,
        [*PRECONDITION, *fs("command scriptUri stderr stdout", multi="scriptArgument")],
        page="dp-object-shellcommandprecondition",
        one_of=(("command", "scriptUri"),),
        exclusive=(("command", "scriptUri", "error"),),
        note="runs the command with /bin/sh; exit status 0 means the condition holds",
    ),
    # -- databases ------------------------------------------------------------------------------
    object_type(
        "JdbcDatabase",
        Category.DATABASE,
        [
            PARENT,
            *fs(
                "connectionString jdbcDriverClass username *password databaseName jdbcDriverJarUri",
                multi="jdbcProperties",
            ),
        ],
        page="dp-object-jdbcdatabase",
        required=("connectionString", "jdbcDriverClass", "username", "*password"),
        limited=True,
        note="jdbc:postgresql:, jdbc:mysql:, jdbc:mariadb:, jdbc:sqlite: and jdbc:duckdb: (Python drivers; "
        "jdbcDriverClass and jdbcDriverJarUri ignored); other drivers refused",
    ),
    object_type(
        "RdsDatabase",
        Category.DATABASE,
        [
            PARENT,
            *fs(
                "*password rdsInstanceId username databaseName jdbcDriverJarUri region",
                multi="jdbcProperties",
            ),
        ],
        page="dp-object-rdsdatabase",
        required=("*password", "rdsInstanceId", "username"),
        limited=True,
        note="rdsInstanceId mapped to a MySQL or PostgreSQL server by [databases.rds_instances]; unmapped "
        "ids are refused",
    ),
    object_type(
        "RedshiftDatabase",
        Category.DATABASE,
        [
            PARENT,
            *fs("*password username clusterId connectionString databaseName region", multi="jdbcProperties"),
        ],
        page="dp-object-redshiftdatabase",
        required=("*password", "username"),
        one_of=(("clusterId", "connectionString"),),
        exclusive=(("clusterId", "connectionString", "error"),),
        limited=True,
        note="a PostgreSQL database: clusterId (or a jdbc:redshift: host) mapped by "
        "[databases.redshift_clusters], or a jdbc:postgresql: connectionString",
    ),
    # -- data formats ---------------------------------------------------------------------------
    object_type(
        "CSV",
        Category.DATA_FORMAT,
        [PARENT, *fs("escapeChar", multi="column")],
        page="dp-object-csv",
        note="comma-separated, unquoted, backslash escapes, LF records",
    ),
    object_type(
        "TSV",
        Category.DATA_FORMAT,
        [PARENT, *fs("columnSeparator escapeChar recordSeparator", multi="column")],
        page="dp-object-tsv",
        note="tab-separated (or columnSeparator), LF records (or recordSeparator)",
    ),
    object_type(
        "Custom",
        Category.DATA_FORMAT,
        [PARENT, *fs("columnSeparator recordSeparator", multi="column")],
        page="dp-object-custom",
        required=("columnSeparator",),
        note="any single-character column and record separators",
    ),
    object_type(
        "RegEx",
        Category.DATA_FORMAT,
        [PARENT, *fs("inputRegEx outputFormat", multi="column")],
        page="dp-object-regex",
        runs_here=False,
        note="accepted; staging RegEx-formatted nodes for Hive does not run here yet",
    ),
    object_type(
        "DynamoDBDataFormat",
        Category.DATA_FORMAT,
        [PARENT, *fs(multi="column")],
        page="dp-object-dynamodbdataformat",
        runs_here=False,
        note="for HiveActivity scripts over DynamoDB tables (Hive's DynamoDB storage handler), which do not "
        "run here; use HiveCopyActivity with DynamoDBExportDataFormat",
    ),
    object_type(
        "DynamoDBExportDataFormat",
        Category.DATA_FORMAT,
        [PARENT, *fs(multi="column")],
        page="dp-object-dynamodbexportdataformat",
        note="HiveCopyActivity's items: its columns are what filterSql reads; S3 files hold DynamoDB JSON lines",
    ),
    # -- actions --------------------------------------------------------------------------------
    object_type(
        "SnsAlarm",
        Category.ACTION,
        [PARENT, *fs("message role subject topicArn")],
        page="dp-object-snsalarm",
        required=("message", "role", "subject", "topicArn"),
        note="evaluated against the triggering instance, recorded as an event and written to the log; "
        "delivery to topic subscribers is not built yet",
    ),
    object_type(
        "Terminate",
        Category.ACTION,
        [PARENT],
        page="dp-object-terminate",
        note="cancels the late object's pending or running instance",
    ),
    # -- configuration objects ------------------------------------------------------------------
    object_type(
        "EmrConfiguration",
        Category.CONFIG,
        [
            PARENT,
            s("classification"),
            ref("configuration", "EmrConfiguration", multi=True),
            ref("property", "Property", multi=True),
        ],
        page="dp-object-emrconfiguration",
        required=("classification",),
        note="accepted and ignored by the local pool",
    ),
    object_type(
        "Property",
        Category.CONFIG,
        [PARENT, *fs("key value")],
        page="dp-object-property",
        required=("key", "value"),
        note="accepted; read through EmrConfiguration",
    ),
    object_type(
        "ShellScriptConfig",
        Category.CONFIG,
        [PARENT, *fs("scriptUri", multi="scriptArgument")],
        page="dp-object-shellscriptconfig",
        note="pre/post-activity shell scripts of Hive activities, run on the worker",
    ),
    object_type(
        "HttpProxy",
        Category.CONFIG,
        [PARENT, *fs("hostname port *password username windowsDomain windowsWorkgroup", bools="s3NoProxy")],
        page="dp-object-httpproxy",
        required=("hostname", "port"),
        note="accepted and ignored (workers use the host's proxy settings)",
    ),
    object_type(
        "EbsConfiguration",
        Category.CONFIG,
        [PARENT, boolean("ebsOptimized"), ref("ebsBlockDeviceConfig", "EbsBlockDeviceConfig", multi=True)],
        page="dp-object-emrcluster",
        note="accepted and ignored (no EBS volumes locally)",
    ),
    object_type(
        "EbsBlockDeviceConfig",
        Category.CONFIG,
        [PARENT, integer("volumesPerInstance"), ref("volumeSpecification", "VolumeSpecification")],
        page="dp-object-emrcluster",
        note="accepted and ignored",
    ),
    object_type(
        "VolumeSpecification",
        Category.CONFIG,
        [PARENT, *fs("volumeType", ints="iops sizeInGB")],
        page="dp-object-emrcluster",
        note="accepted and ignored",
    ),
]

OBJECT_TYPES: Mapping[str, ObjectType] = MappingProxyType({t.name: t for t in _TYPES})
"""Every object type by name."""

ALL_FIELDS: Mapping[str, FieldSpec] = MappingProxyType(
    {name: spec for t in _TYPES for name, spec in t.fields.items() if not spec.not_allowed}
)
"""Every field any type takes (for Default and parent objects, whose fields are inherited)."""

"""A local Apache Kafka cluster (KRaft, SASL/SCRAM, StandardAuthorizer) run as plain processes.

``classpath`` fetches the broker's jars from a Maven repository and checks them against a lock;
``properties`` renders each node's server.properties; ``cluster`` formats, starts and stops nodes.
"""

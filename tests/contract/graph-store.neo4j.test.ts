/**
 * The GraphStore contract against Neo4j, only when NEO4J_URL is set (no Neo4j can run on this
 * project's machines): otherwise the suite is reported as skipped. Uses NEO4J_USER (default
 * `neo4j`) and NEO4J_PASSWORD; removes the nodes its test users created afterwards.
 */
import neo4j from "neo4j-driver";
import { createNeo4jGraphStore } from "../../src/vps/graph/neo4j/neo4j-graph-store.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

const url = process.env.NEO4J_URL;
const user = process.env.NEO4J_USER ?? "neo4j";
const password = process.env.NEO4J_PASSWORD ?? "";

graphStoreContract(
  "neo4j",
  {
    async setup() {
      return createNeo4jGraphStore({ url: url!, user, password });
    },
    async teardown() {
      if (!url) return;
      const driver = neo4j.driver(url, neo4j.auth.basic(user, password));
      try {
        await driver.executeQuery("MATCH (n) WHERE n.user_id STARTS WITH 'user-neo4j-' DETACH DELETE n");
      } finally {
        await driver.close();
      }
    },
  },
  url ? {} : { skip: "NEO4J_URL is not set" },
);

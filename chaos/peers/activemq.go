package peers

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Debian's ActiveMQ Classic (package activemq).
const (
	ActiveMQHome = "/usr/share/activemq"
	ActiveMQJar  = ActiveMQHome + "/bin/activemq.jar"
)

// The PostgreSQL JDBC driver and the connection pool ActiveMQ's JDBC
// store uses (Debian's packages libpostgresql-jdbc-java,
// libcommons-dbcp-java and libcommons-pool-java; /usr/share/activemq/lib/optional
// links to the pool's jars, which the activemq package only recommends).
const (
	PostgresJDBCJar = "/usr/share/java/postgresql.jar"
	CommonsDBCPJar  = "/usr/share/java/commons-dbcp.jar"
	CommonsPoolJar  = "/usr/share/java/commons-pool.jar"
)

// ActiveMQJVMOptions are Debian's ACTIVEMQ_OPTS (/usr/share/activemq/activemq-options)
// and the module flags /usr/bin/activemq passes on Java 17, as
// shared/peers/activemq/broker.sh starts it for the peers' figures.
var ActiveMQJVMOptions = []string{
	"-Xms512M", "-Xmx512M", "-Dorg.apache.activemq.UseDedicatedTaskRunner=true",
	"--add-reads=java.xml=java.logging",
	"--add-opens", "java.base/java.security=ALL-UNNAMED", "--add-opens", "java.base/java.net=ALL-UNNAMED",
	"--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED",
	"--add-opens", "java.naming/javax.naming.spi=ALL-UNNAMED", "--add-opens", "java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
	"--add-opens", "java.base/java.util.concurrent=ALL-UNNAMED", "--add-opens", "java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED", "--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED", "--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED",
	"--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED",
}

// ActiveMQAvailable says why ActiveMQ cannot run here, or nil.
func ActiveMQAvailable() error {
	if _, err := os.Stat(ActiveMQJar); err != nil {
		return fmt.Errorf("peers: %s missing: install Debian's activemq (chaos/bench/install-peers.sh, as root)", ActiveMQJar)
	}
	return nil
}

// ActiveMQJDBCAvailable says why ActiveMQ's JDBC store on PostgreSQL
// cannot run here, or nil.
func ActiveMQJDBCAvailable() error {
	if err := ActiveMQAvailable(); err != nil {
		return err
	}
	for _, jar := range []string{PostgresJDBCJar, CommonsDBCPJar, CommonsPoolJar} {
		if _, err := os.Stat(jar); err != nil {
			return fmt.Errorf("peers: %s missing: ActiveMQ's JDBC store needs Debian's libpostgresql-jdbc-java, libcommons-dbcp-java and libcommons-pool-java (chaos/bench/install-peers.sh, as root)", jar)
		}
	}
	return nil
}

// JDBCPostgres turns a PostgreSQL URL (postgres://user@host:port/db?...,
// as the harness's database servers give them) into the JDBC driver's URL
// (jdbc:postgresql://host:port/db) and the user; the harness's servers
// trust 127.0.0.1 and have no password.
func JDBCPostgres(dsn string) (jdbcURL, user string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("peers: database %q: %w", dsn, err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || db == "" || strings.Contains(db, "/") || u.Port() == "" {
		return "", "", fmt.Errorf("peers: database %q: not postgres://user@host:port/database", dsn)
	}
	if _, set := u.User.Password(); set {
		return "", "", fmt.Errorf("peers: database %q: a password is not passed on", dsn)
	}
	return "jdbc:postgresql://" + u.Host + "/" + url.PathEscape(db), u.User.Username(), nil
}

// ActiveMQNode is what one ActiveMQ broker of a scenario needs to know.
type ActiveMQNode struct {
	// Listen is its STOMP address.
	Listen string
	// Dir is its ACTIVEMQ_BASE (conf/, tmp/); Data its activemq.data
	// (KahaDB under kahadb/: the node's data disk).
	Dir, Data string
	// Sync is KahaDB's journalDiskSyncStrategy ("" is always).
	Sync string
	// JDBCURL, when set, replaces KahaDB with the JDBC store
	// (jdbcPersistenceAdapter, tables made on start) on that PostgreSQL
	// database (JDBCPostgres), as JDBCUser without a password.
	JDBCURL, JDBCUser string
}

// Write writes conf/activemq.xml and conf/log4j.properties under Dir.
func (a ActiveMQNode) Write() error {
	conf := filepath.Join(a.Dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(a.Dir, "tmp"), 0o755); err != nil {
		return err
	}
	store, beans := a.kahaDB(), ""
	if a.JDBCURL != "" {
		// ActiveMQ adds ACTIVEMQ_BASE/lib to its class path.
		lib := filepath.Join(a.Dir, "lib")
		if err := os.MkdirAll(lib, 0o755); err != nil {
			return err
		}
		link := filepath.Join(lib, "postgresql.jar")
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.Symlink(PostgresJDBCJar, link); err != nil {
			return fmt.Errorf("peers: link the JDBC driver: %w", err)
		}
		store = `<jdbcPersistenceAdapter dataSource="#postgres-ds" createTablesOnStartup="true"/>`
		beans = fmt.Sprintf(`
    <bean id="postgres-ds" class="org.apache.commons.dbcp.BasicDataSource" destroy-method="close">
        <property name="driverClassName" value="org.postgresql.Driver"/>
        <property name="url" value="%s"/>
        <property name="username" value="%s"/>
        <property name="password" value=""/>
        <property name="maxActive" value="200"/>
        <property name="poolPreparedStatements" value="true"/>
    </bean>`, xmlEscape(a.JDBCURL), xmlEscape(a.JDBCUser))
	}
	x := fmt.Sprintf(`<beans
  xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
    <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
    <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="localhost" dataDirectory="${activemq.data}">
        <persistenceAdapter>
            %s
        </persistenceAdapter>
        <transportConnectors>
            <transportConnector name="stomp" uri="stomp://%s"/>
        </transportConnectors>
    </broker>%s
</beans>
`, store, xmlEscape(a.Listen), beans)
	if err := os.WriteFile(filepath.Join(conf, "activemq.xml"), []byte(x), 0o644); err != nil {
		return fmt.Errorf("peers: activemq config: %w", err)
	}
	log4j := "log4j.rootLogger=INFO, console\nlog4j.appender.console=org.apache.log4j.ConsoleAppender\n" +
		"log4j.appender.console.layout=org.apache.log4j.PatternLayout\nlog4j.appender.console.layout.ConversionPattern=%d %-5p %c{1} - %m%n\n"
	return os.WriteFile(filepath.Join(conf, "log4j.properties"), []byte(log4j), 0o644)
}

// kahaDB is the KahaDB persistence adapter's element.
func (a ActiveMQNode) kahaDB() string {
	sync := a.Sync
	if sync == "" {
		sync = "always"
	}
	return fmt.Sprintf(`<kahaDB directory="${activemq.data}/kahadb" journalDiskSyncStrategy="%s"/>`, xmlEscape(sync))
}

// Argv runs the broker's JVM in the foreground.
func (a ActiveMQNode) Argv() []string {
	conf := filepath.Join(a.Dir, "conf")
	argv := append([]string{"java"}, ActiveMQJVMOptions...)
	return append(argv,
		"-Djava.io.tmpdir="+filepath.Join(a.Dir, "tmp"),
		"-Dactivemq.classpath="+conf+":",
		"-Dactivemq.home="+ActiveMQHome, "-Dactivemq.base="+a.Dir,
		"-Dactivemq.conf="+conf, "-Dactivemq.data="+a.Data,
		"-jar", ActiveMQJar, "start", "xbean:file:"+filepath.Join(conf, "activemq.xml"))
}

// xmlEscape escapes s for an XML attribute value.
func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

INSERT /* ( */ INTO t -- (x
 ( a /* ) */ , b -- )
 ) VALUES ( 1 /* ) */, ( 2 ) -- )
 ) ;